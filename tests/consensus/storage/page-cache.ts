// A StorageIO double that models the page cache, so tests can cut the power: what was not made
// durable (file data by fsync/fdatasync, directory entries by an fsync of the directory) may be
// lost, reordered or torn. The fault model is described in consensus/README.md.
import { basename, dirname } from "node:path";
import type { StorageIO } from "../../../consensus/index.ts";
import type { Rng } from "../sim/rng.ts";

/** Thrown by every call once the power is cut (and by the call at which it is cut). */
export class PowerCut extends Error {
	override name = "PowerCut";
}

type FileOp = { kind: "write"; at: number; data: Buffer } | { kind: "truncate"; len: number };
type DirOp =
	| { kind: "link"; name: string; node: Node }
	| { kind: "unlink"; name: string }
	| { kind: "rename"; from: string; to: string };

interface FileNode {
	dir: false;
	durable: Buffer;
	current: Buffer;
	pending: FileOp[];
}
interface DirNode {
	dir: true;
	durable: Map<string, Node>;
	current: Map<string, Node>;
	pending: DirOp[];
}
type Node = FileNode | DirNode;

const fileNode = (data: Buffer = Buffer.alloc(0)): FileNode => ({
	dir: false,
	durable: data,
	current: data,
	pending: [],
});
const dirNode = (entries = new Map<string, Node>()): DirNode => ({
	dir: true,
	durable: entries,
	current: new Map(entries),
	pending: [],
});

const fsError = (code: string, path: string) => Object.assign(new Error(`${code}: ${path}`), { code });

export interface PageCacheOptions {
	/** Negative control: fsync and fdatasync do nothing (nothing is ever made durable). */
	noSync?: boolean;
	/** Negative control: a directory fsync makes creates and unlinks durable but not renames. */
	volatileRenames?: boolean;
}

export interface CallRecord {
	call: string;
	path?: string;
}

export class PageCacheIO implements StorageIO {
	private readonly root: DirNode;
	private readonly fds = new Map<number, { node: FileNode; append: boolean; pos: number; path: string }>();
	private nextFd = 3;
	private cut = false;
	/** Calls made so far; the power goes off at the call numbered `cutAt`. */
	calls = 0;
	cutAt = Number.POSITIVE_INFINITY;
	/** Every call in order (for checking call sequences). */
	readonly log: CallRecord[] = [];
	readonly options: PageCacheOptions;

	constructor(options: PageCacheOptions = {}, root: DirNode = dirNode()) {
		this.options = options;
		this.root = root;
	}

	get powerIsCut(): boolean {
		return this.cut;
	}

	private tick(call: string, path?: string): void {
		if (this.cut || ++this.calls >= this.cutAt) {
			this.cut = true;
			throw new PowerCut(`power cut at call ${this.calls} (${call} ${path ?? ""})`);
		}
		this.log.push({ call, path });
	}

	private lookup(path: string): Node | undefined {
		let node: Node = this.root;
		for (const part of path.split("/").filter(Boolean)) {
			if (!node.dir) return undefined;
			const next: Node | undefined = node.current.get(part);
			if (!next) return undefined;
			node = next;
		}
		return node;
	}

	private parentOf(path: string): DirNode {
		const p = this.lookup(dirname(path));
		if (!p?.dir) throw fsError("ENOENT", dirname(path));
		return p;
	}

	private file(path: string): FileNode {
		const n = this.lookup(path);
		if (!n) throw fsError("ENOENT", path);
		if (n.dir) throw fsError("EISDIR", path);
		return n;
	}

	private fd(fd: number) {
		const f = this.fds.get(fd);
		if (!f) throw fsError("EBADF", String(fd));
		return f;
	}

	private static apply(buf: Buffer, op: FileOp): Buffer {
		if (op.kind === "truncate")
			return op.len <= buf.length ? buf.subarray(0, op.len) : Buffer.concat([buf, Buffer.alloc(op.len - buf.length)]);
		const end = op.at + op.data.length;
		const out = Buffer.alloc(Math.max(buf.length, end));
		buf.copy(out);
		op.data.copy(out, op.at);
		return out;
	}

	private modify(node: FileNode, op: FileOp): void {
		node.current = PageCacheIO.apply(node.current, op);
		node.pending.push(op);
	}

	private dirOp(dir: DirNode, op: DirOp): void {
		PageCacheIO.applyDir(dir.current, op);
		dir.pending.push(op);
	}

	private static applyDir(entries: Map<string, Node>, op: DirOp): void {
		if (op.kind === "link") entries.set(op.name, op.node);
		else if (op.kind === "unlink") entries.delete(op.name);
		else {
			const n = entries.get(op.from);
			if (!n) return; // its creation did not survive
			entries.delete(op.from);
			entries.set(op.to, n);
		}
	}

	readFile(path: string): Buffer {
		this.tick("readFile", path);
		return Buffer.from(this.file(path).current);
	}

	readdir(dir: string): string[] {
		this.tick("readdir", dir);
		const d = this.lookup(dir);
		if (!d?.dir) throw fsError("ENOENT", dir);
		return [...d.current.keys()];
	}

	exists(path: string): boolean {
		this.tick("exists", path);
		return this.lookup(path) !== undefined;
	}

	size(path: string): number {
		this.tick("size", path);
		return this.file(path).current.length;
	}

	mkdir(dir: string): void {
		this.tick("mkdir", dir);
		const parent = this.parentOf(dir);
		if (parent.current.has(basename(dir))) throw fsError("EEXIST", dir);
		this.dirOp(parent, { kind: "link", name: basename(dir), node: dirNode() });
	}

	open(path: string, flags: "a" | "w" | "r+"): number {
		this.tick(`open(${flags})`, path);
		let node = this.lookup(path);
		if (node?.dir) throw fsError("EISDIR", path);
		if (!node) {
			if (flags === "r+") throw fsError("ENOENT", path);
			node = fileNode();
			this.dirOp(this.parentOf(path), { kind: "link", name: basename(path), node });
		} else if (flags === "w") this.modify(node, { kind: "truncate", len: 0 });
		const fd = this.nextFd++;
		this.fds.set(fd, { node, append: flags === "a", pos: 0, path });
		return fd;
	}

	write(fd: number, data: Uint8Array, offset: number, length: number): number {
		const f = this.fd(fd);
		this.tick("write", f.path);
		const at = f.append ? f.node.current.length : f.pos;
		this.modify(f.node, { kind: "write", at, data: Buffer.from(data.subarray(offset, offset + length)) });
		f.pos = at + length;
		return length;
	}

	truncate(fd: number, length: number): void {
		const f = this.fd(fd);
		this.tick("truncate", f.path);
		this.modify(f.node, { kind: "truncate", len: length });
	}

	private syncFile(fd: number, call: string): void {
		const f = this.fd(fd);
		this.tick(call, f.path);
		if (this.options.noSync) return;
		f.node.durable = f.node.current;
		f.node.pending = [];
	}

	fsync(fd: number): void {
		this.syncFile(fd, "fsync");
	}

	fdatasync(fd: number): void {
		this.syncFile(fd, "fdatasync");
	}

	async fdatasyncAsync(fd: number): Promise<void> {
		this.syncFile(fd, "fdatasync");
	}

	close(fd: number): void {
		this.tick("close", this.fds.get(fd)?.path);
		this.fd(fd);
		this.fds.delete(fd);
	}

	rename(from: string, to: string): void {
		this.tick("rename", `${from} -> ${to}`);
		if (dirname(from) !== dirname(to)) throw new Error(`PageCacheIO models renames within one directory only: ${from}`);
		const parent = this.parentOf(from);
		if (!parent.current.has(basename(from))) throw fsError("ENOENT", from);
		this.dirOp(parent, { kind: "rename", from: basename(from), to: basename(to) });
	}

	unlink(path: string): void {
		this.tick("unlink", path);
		this.file(path);
		this.dirOp(this.parentOf(path), { kind: "unlink", name: basename(path) });
	}

	removeTree(path: string): void {
		this.tick("removeTree", path);
		const remove = (p: string, node: Node) => {
			if (node.dir) for (const [name, child] of [...node.current]) remove(`${p}/${name}`, child);
			this.dirOp(this.parentOf(p), { kind: "unlink", name: basename(p) });
		};
		const node = this.lookup(path);
		if (node) remove(path, node);
	}

	fsyncDir(dir: string): void {
		this.tick("fsyncDir", dir);
		const d = this.lookup(dir);
		if (!d?.dir) throw fsError("ENOENT", dir);
		if (this.options.noSync) return;
		if (this.options.volatileRenames) {
			for (const op of d.pending) if (op.kind !== "rename") PageCacheIO.applyDir(d.durable, op);
			d.pending = d.pending.filter((op) => op.kind === "rename");
			return;
		}
		d.durable = new Map(d.current);
		d.pending = [];
	}

	/**
	 * What the disk holds after the power comes back: per file and per directory, the durable state
	 * plus some of the pending operations (a random subset, kept in order, so later ones may survive
	 * without earlier ones), a kept write possibly torn (only a prefix of it landed, the rest of its
	 * range possibly zeros). Open files are closed. The result is a fresh, powered PageCacheIO.
	 */
	crash(rng: Rng): PageCacheIO {
		const done = new Map<Node, Node>();
		const subset = <T>(ops: T[]): T[] => {
			const mode = rng.int(0, 3);
			if (mode === 0) return ops; // everything reached the disk
			if (mode === 1) return []; // nothing did
			if (mode === 2) return ops.slice(0, rng.int(0, ops.length)); // in order, up to some point
			return ops.filter(() => rng.chance(0.5)); // reordered: any subset
		};
		const survive = (node: Node): Node => {
			const seen = done.get(node);
			if (seen) return seen;
			let out: Node;
			if (node.dir) {
				const entries = new Map(node.durable);
				for (const op of subset(node.pending)) PageCacheIO.applyDir(entries, op);
				out = dirNode();
				done.set(node, out);
				for (const [name, child] of entries) out.durable.set(name, survive(child));
				out.current = new Map(out.durable);
			} else {
				let data = node.durable;
				for (const op of subset(node.pending)) {
					if (op.kind === "write" && op.data.length > 0 && rng.chance(0.3)) {
						// Torn: a prefix landed; the size may already cover the whole write (zeros).
						const keep = rng.int(0, op.data.length - 1);
						const torn = rng.chance(0.5) ? Buffer.alloc(op.data.length) : Buffer.alloc(keep);
						op.data.copy(torn, 0, 0, keep);
						data = PageCacheIO.apply(data, { kind: "write", at: op.at, data: torn });
					} else data = PageCacheIO.apply(data, op);
				}
				out = fileNode(data);
				done.set(node, out);
			}
			return out;
		};
		return new PageCacheIO(this.options, survive(this.root) as DirNode);
	}
}
