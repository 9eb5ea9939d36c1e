// The one way a digest or diff id becomes a path: both come from manifests, configs and archives,
// i.e. from whoever made the image, so "sha256:../../etc" must never reach join().
import { InvalidDigestError } from "./errors.ts";

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(d: unknown): d is string {
	return typeof d === "string" && DIGEST_RE.test(d);
}

/** The hex of a valid digest (a safe path component), or InvalidDigestError saying what it was. */
export function digestHex(d: unknown, what: string): string {
	if (!isDigest(d)) throw new InvalidDigestError(d, what);
	return d.slice("sha256:".length);
}
