// SIGINT/SIGTERM during lab work abort it; the work's own error path then tears down what it
// made, and the command ends with InterruptedError (exit 130/143). Further signals while cleaning
// up are ignored so the cleanup is never cut short.
import { InterruptedError } from "../errors.ts";

export async function withInterrupts<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
	const ac = new AbortController();
	let received: NodeJS.Signals | undefined;
	const onSignal = (sig: NodeJS.Signals) => {
		if (received) return;
		received = sig;
		process.stderr.write(`tsswarm: ${sig} received, cleaning up\n`);
		ac.abort(new InterruptedError(sig));
	};
	process.on("SIGINT", onSignal);
	process.on("SIGTERM", onSignal);
	try {
		return await work(ac.signal);
	} catch (err) {
		if (received) throw new InterruptedError(received);
		throw err;
	} finally {
		process.off("SIGINT", onSignal);
		process.off("SIGTERM", onSignal);
	}
}
