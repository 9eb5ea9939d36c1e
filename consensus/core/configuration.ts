// Cluster membership as Raft sees it: voters count toward quorums, non-voters only receive the log.
import { pack, unpack } from "msgpackr";
import { BadConfigError } from "../errors.ts";
import type { Configuration, ServerConfig } from "../storage/types.ts";

export const voters = (c: Configuration) => c.servers.filter((s) => s.suffrage === "voter").map((s) => s.id);
export const isVoter = (c: Configuration, id: string) => c.servers.some((s) => s.id === id && s.suffrage === "voter");
export const hasServer = (c: Configuration, id: string) => c.servers.some((s) => s.id === id);
export const quorum = (c: Configuration) => Math.floor(voters(c).length / 2) + 1;

export function validateConfiguration(c: Configuration): Configuration {
	const seen = new Set<string>();
	for (const s of c.servers) {
		if (!s.id) throw new BadConfigError("a server has an empty id");
		if (seen.has(s.id)) throw new BadConfigError(`server ${s.id} appears twice`);
		if (s.suffrage !== "voter" && s.suffrage !== "nonvoter") throw new BadConfigError(`server ${s.id}: bad suffrage`);
		seen.add(s.id);
	}
	if (voters(c).length === 0) throw new BadConfigError("a configuration needs at least one voter");
	return c;
}

export const encodeConfiguration = (c: Configuration): Uint8Array => pack(c);

export function decodeConfiguration(data: Uint8Array): Configuration {
	const c = unpack(data) as Configuration;
	if (!c || !Array.isArray(c.servers)) throw new BadConfigError("configuration entry is malformed");
	return validateConfiguration(c);
}

/** The configuration after adding/changing one server (single-server change). */
export function withServer(c: Configuration, s: ServerConfig): Configuration {
	const servers = c.servers.filter((x) => x.id !== s.id);
	servers.push(s);
	return { servers };
}

export function withoutServer(c: Configuration, id: string): Configuration {
	return { servers: c.servers.filter((x) => x.id !== id) };
}
