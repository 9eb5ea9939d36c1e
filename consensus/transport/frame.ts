// Length-prefixed frames: [u32 big-endian length][msgpackr body]. The decoder bounds every frame
// before buffering it, so a peer cannot make us hold more than maxFrameBytes.
import { Packr } from "msgpackr";
import { InvalidMessageError } from "../errors.ts";

const packr = new Packr({ useRecords: false });

export class FrameTooLargeError extends InvalidMessageError {
	override name = "FrameTooLargeError";
	constructor(size: number, max: number) {
		super(`frame of ${size} bytes exceeds the ${max}-byte bound`);
	}
}

export function encodeFrame(value: unknown, maxFrameBytes: number): Uint8Array {
	const body = packr.pack(value);
	if (body.length > maxFrameBytes) throw new FrameTooLargeError(body.length, maxFrameBytes);
	const out = Buffer.allocUnsafe(4 + body.length);
	out.writeUInt32BE(body.length, 0);
	body.copy(out, 4);
	return out;
}

export class FrameDecoder {
	private buf: Buffer = Buffer.alloc(0);
	private readonly max: number;

	constructor(maxFrameBytes: number) {
		this.max = maxFrameBytes;
	}

	/** Feed bytes; returns the complete frames decoded so far. Throws on an oversized or undecodable frame. */
	push(chunk: Uint8Array): unknown[] {
		this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
		const out: unknown[] = [];
		while (this.buf.length >= 4) {
			const len = this.buf.readUInt32BE(0);
			if (len > this.max) throw new FrameTooLargeError(len, this.max);
			if (this.buf.length < 4 + len) break;
			const body = this.buf.subarray(4, 4 + len);
			this.buf = this.buf.subarray(4 + len);
			try {
				out.push(packr.unpack(body));
			} catch (err) {
				throw new InvalidMessageError(`undecodable frame: ${(err as Error).message}`);
			}
		}
		return out;
	}

	/** Bytes of an incomplete frame still buffered (a truncated frame at stream end). */
	pending(): number {
		return this.buf.length;
	}
}
