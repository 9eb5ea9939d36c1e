// Keys of a manager: sealing (AES-256-GCM with associated data), the on-disk key file (optionally
// sealed with an unlock key: autolock) and unlock keys as printed to a person.
export { dataCipher } from "./cipher.ts";
export { InvalidUnlockKeyError, KeyFileError, KeysLockedError, SealedDataError } from "./errors.ts";
export {
	keyFileExists,
	keyFileLocked,
	type ManagerKeys,
	newManagerKeys,
	readKeyFile,
	writeKeyFile,
} from "./keyfile.ts";
export { KEY_BYTES, newKey, open, SEAL_OVERHEAD, seal } from "./seal.ts";
export { formatUnlockKey, parseUnlockKey } from "./unlock.ts";
