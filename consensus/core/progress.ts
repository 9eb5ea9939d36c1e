// What the leader knows about each follower's log, and how much it may send before hearing back.

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
	match = 0;
	next: number;
	state: ProgressState = "probe";
	/** In probe state: one append is out; wait for its answer (or the next heartbeat) before another. */
	probeSent = false;
	/** Last index of each append in flight (replicate state), oldest first. */
	inflight: number[] = [];
	pendingSnapshot = 0;
	/** Leader ticks since the snapshot was sent. */
	snapshotElapsed = 0;
	/** Heard from since the last check-quorum round. */
	recentActive = false;

	constructor(next: number) {
		this.next = next;
	}

	becomeProbe(): void {
		// After a snapshot, continue from just past it; otherwise retry right after the match.
		this.next = this.state === "snapshot" ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
		this.state = "probe";
		this.probeSent = false;
		this.inflight = [];
		this.pendingSnapshot = 0;
	}

	becomeReplicate(): void {
		this.state = "replicate";
		this.next = this.match + 1;
		this.inflight = [];
		this.probeSent = false;
	}

	becomeSnapshot(index: number): void {
		this.state = "snapshot";
		this.pendingSnapshot = index;
		this.snapshotElapsed = 0;
		this.inflight = [];
	}

	/** The snapshot got no answer: probe from the match again, which resends it. */
	retrySnapshot(): void {
		this.state = "probe";
		this.next = this.match + 1;
		this.probeSent = false;
		this.pendingSnapshot = 0;
	}

	/** An acknowledgement up to index: returns true if it moved the match forward. */
	maybeUpdate(index: number): boolean {
		let updated = false;
		if (index > this.match) {
			this.match = index;
			updated = true;
			this.probeSent = false;
		}
		this.next = Math.max(this.next, index + 1);
		while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
		return updated;
	}

	isPaused(maxInflight: number): boolean {
		if (this.state === "probe") return this.probeSent;
		if (this.state === "snapshot") return true;
		return this.inflight.length >= maxInflight;
	}
}
