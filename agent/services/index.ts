// agent/services: service specs and tasks — the shapes the store keeps, the API takes, the
// dispatcher sends and the worker runs; validation beside each.
export * from "./errors.ts";
export * from "./service.ts";
export * from "./spec.ts";
export * from "./task.ts";
