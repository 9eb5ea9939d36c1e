// runtime/: a container runtime for edge nodes — images (pull, store, safe unpack) and containers
// (overlayfs, OCI spec, runc). Imports nothing of tsswarm outside runtime/.
// The worker drives containers through the ContainerRuntime interface, which Runtime implements.
export * from "./container/index.ts";
export * from "./errors.ts";
export * from "./image/index.ts";
