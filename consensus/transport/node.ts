// A minimal libp2p node for raft-ts used on its own (examples, benchmarks): TCP + Noise + Yamux.
// tsswarm's agent brings its own host and passes it to Libp2pTransport instead.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Libp2p, PrivateKey } from "@libp2p/interface";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";

export async function createRaftNode(o: { listen: string[]; privateKey?: PrivateKey }): Promise<Libp2p> {
	return createLibp2p({
		privateKey: o.privateKey,
		addresses: { listen: o.listen },
		transports: [tcp()],
		connectionEncrypters: [noise()],
		streamMuxers: [yamux()],
	});
}
