// Keyring errors: a sealed value that does not open (wrong key, tampered, truncated), a bad unlock
// key, a key file that is locked. Each names what was wrong, never the key or the plaintext.
import { AgentError } from "../errors.ts";

export class SealedDataError extends AgentError {
	static override status = 500;
	static readonly code = "ERR_SEALED_DATA";
	constructor(what: string, why: string) {
		super(`${what} could not be opened: ${why}`, SealedDataError.code);
		this.name = "SealedDataError";
	}
}

export class InvalidUnlockKeyError extends AgentError {
	static override status = 400;
	static readonly code = "ERR_INVALID_UNLOCK_KEY";
	constructor(why: string) {
		super(`invalid unlock key: ${why}`, InvalidUnlockKeyError.code);
		this.name = "InvalidUnlockKeyError";
	}
}

export class KeysLockedError extends AgentError {
	static override status = 423;
	static readonly code = "ERR_LOCKED";
	constructor() {
		super("this manager is locked: run `tsswarm unlock` with the cluster's unlock key", KeysLockedError.code);
		this.name = "KeysLockedError";
	}
}

export class KeyFileError extends AgentError {
	static readonly code = "ERR_KEY_FILE";
	constructor(path: string, why: string) {
		super(`key file ${path}: ${why}`, KeyFileError.code);
		this.name = "KeyFileError";
	}
}
