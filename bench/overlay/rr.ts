// TCP request/response round trips, run inside a namespace: `server ADDR PORT` echoes every byte
// back; `client ADDR PORT N` sends one byte, waits for it, N times on one connection (Nagle off),
// and prints the round-trip times in µs as JSON. The same program on both paths, so Node's own
// cost is in both and cancels out of the difference.
import { connect, createServer } from "node:net";

const [mode, addr, port, count] = process.argv.slice(2);
if (mode === "server") {
	createServer((c) => {
		c.setNoDelay(true);
		c.on("data", (d) => c.write(d));
		c.on("error", () => {});
	}).listen(Number(port), addr, () => process.stdout.write("listening\n"));
} else {
	const n = Number(count ?? 2000);
	const c = connect({ host: addr!, port: Number(port) }, () => {
		c.setNoDelay(true);
		const out: number[] = [];
		let t0 = process.hrtime.bigint();
		const one = Buffer.from([42]);
		c.on("data", () => {
			out.push(Number(process.hrtime.bigint() - t0) / 1000);
			if (out.length === n) {
				process.stdout.write(`${JSON.stringify(out.slice(Math.min(100, n / 10)))}\n`); // the first are warm-up
				c.destroy();
				return;
			}
			t0 = process.hrtime.bigint();
			c.write(one);
		});
		c.write(one);
	});
	c.on("error", (e) => {
		process.stderr.write(`${e.message}\n`);
		process.exit(1);
	});
}
