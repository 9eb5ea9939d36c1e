import { enableCompileCache } from "node:module";

// When started without the wrapper, still cache the stripped TypeScript of everything imported next.
enableCompileCache();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
