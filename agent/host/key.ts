// The node's identity: a persistent Ed25519 key in the data dir; its libp2p peer id is the node id.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";

export async function loadOrCreateNodeKey(dataDir: string): Promise<Ed25519PrivateKey> {
	mkdirSync(dataDir, { recursive: true, mode: 0o700 });
	const path = join(dataDir, "node.key");
	try {
		return privateKeyFromProtobuf(readFileSync(path)) as Ed25519PrivateKey;
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
	}
	const key = await generateKeyPair("Ed25519");
	writeFileSync(path, privateKeyToProtobuf(key), { mode: 0o600, flag: "wx" });
	return key;
}
