// tar-stream's header module, whose pax decoder unpack.ts swaps. tar-stream does not export it, so
// from source it is reached by path; the release bundle (scripts/release) replaces this file with
// a plain import of the same module (which tar-stream's extract.js then shares in the bundle too).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export interface TarHeaders {
	decodePax(buf: Buffer): Record<string, string>;
}

export function tarHeaders(): TarHeaders {
	const req = createRequire(import.meta.url);
	return req(join(dirname(req.resolve("tar-stream")), "headers.js")) as TarHeaders;
}
