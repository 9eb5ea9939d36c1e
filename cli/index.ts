export { CommandError, UsageError } from "./errors.ts";
export { buildProgram, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main } from "./main.ts";
