// Multi-arch test images built locally from Debian's busybox-static (see build.ts).

export { buildTestImages, DEFAULT_CACHE, type TestImages } from "./build.ts";
export { ARCHES, type DebArch } from "./debs.ts";
export { MEDIA } from "./oci.ts";
