// Images: registry client, content store, safe unpack, OCI layout / docker save import.
export * from "./errors.ts";
export {
	formatPlatform,
	hostPlatform,
	normalizePlatform,
	type Platform,
	parsePlatform,
	parseReference,
	platformMatches,
	type Reference,
} from "./reference.ts";
export { MEDIA, RegistryClient, type RegistryOptions } from "./registry.ts";
export { type ImageConfig, type ImageRecord, ImageStore, type PullProgress, type ResolvedImage } from "./store.ts";
export { type Compression, unpackLayer } from "./unpack.ts";
