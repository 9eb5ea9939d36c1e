// Run inside a task's namespace: one DNS query over TCP to SERVER:53, prints the parsed answer.
import { connect } from "node:net";
import { buildQuery, parseAnswer } from "../../overlay-net/index.ts";

const [server, name] = process.argv.slice(2);
const c = connect({ host: server!, port: 53 }, () => {
	const q = buildQuery(7, name!);
	const len = Buffer.alloc(2);
	len.writeUInt16BE(q.length);
	c.write(Buffer.concat([len, q]));
});
let buf = Buffer.alloc(0);
c.on("data", (d: Buffer) => {
	buf = Buffer.concat([buf, d]);
	if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
		process.stdout.write(`${JSON.stringify(parseAnswer(buf.subarray(2, 2 + buf.readUInt16BE(0))))}\n`);
		c.destroy();
	}
});
c.on("error", (e) => {
	process.stderr.write(`${e.message}\n`);
	process.exit(1);
});
setTimeout(() => process.exit(2), 5000).unref();
