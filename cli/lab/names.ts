// Every kernel object of a lab lives inside namespaces named after the lab, so two labs (two test
// files) never collide and the names alone tell a sweep what belongs to which lab.
import { InvalidLabNameError } from "./errors.ts";

export const LAB_NETNS_PREFIX = "tsl-";
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,23}$/;

export function validateLabName(name: string): string {
	if (!NAME_RE.test(name)) throw new InvalidLabNameError(name);
	return name;
}

export const hubNetns = (lab: string) => `${LAB_NETNS_PREFIX}${lab}-hub`;
export const nodeNetns = (lab: string, node: string) => `${LAB_NETNS_PREFIX}${lab}-${node}`;
export const nodeName = (k: number) => `n${k}`;
/** Underlay address of node k (1-based); .254 is the registry. */
export const nodeAddress = (k: number) => `198.18.0.${k}`;
export const REGISTRY_NODE = "registry";
export const REGISTRY_ADDRESS = "198.18.0.254";
export const REGISTRY_PORT = 5000;
export const UNDERLAY_PREFIX = 16;
export const MAX_NODES = 250;
