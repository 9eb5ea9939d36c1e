// Which peers are cluster members. The control plane's store will provide this; for now a set.
export interface AllowList {
	has(peerId: string): boolean;
	add(peerId: string): void;
	remove(peerId: string): void;
	list(): string[];
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
