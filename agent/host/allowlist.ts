// Which peers are cluster members: the agent's node directory (from the store's nodes table);
// a plain set for tests of the host alone.
export interface AllowList {
	has(peerId: string): boolean;
}

export class MemoryAllowList implements AllowList {
	private readonly peers = new Set<string>();
	has(p: string): boolean {
		return this.peers.has(p);
	}
	add(p: string): void {
		this.peers.add(p);
	}
	remove(p: string): void {
		this.peers.delete(p);
	}
	list(): string[] {
		return [...this.peers];
	}
}
