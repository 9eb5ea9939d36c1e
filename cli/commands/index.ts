import type { Command } from "commander";
import { registerContainers } from "./container.ts";
import { registerImage } from "./image.ts";
import { registerLab } from "./lab.ts";
import { registerNetwork } from "./network.ts";
import { registerSecret } from "./secret.ts";
import { registerService } from "./service.ts";
import { registerStack } from "./stack.ts";
import { registerSwarm } from "./swarm.ts";

// Each entry registers its command's flags and help cheaply; the implementation is imported
// lazily inside the action, so `tsswarm --version` loads none of it. Add one line per command.
export const registrations: Array<(program: Command) => void> = [
	registerLab,
	registerSwarm,
	registerImage,
	registerContainers,
	registerNetwork,
	registerService,
	registerSecret,
	registerStack,
];
