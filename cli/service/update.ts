// tsswarm service update / rollback: the current spec with the flags applied, sent with the record
// version it was read at (a concurrent change is refused), then docker's progress display until
// the update completes, pauses or rolls back (unless --detach).
import type { ServiceRecord as StoredService, TaskRow } from "../../agent/api/index.ts";
import { call } from "../../agent/api/index.ts";
import { CommandError } from "../errors.ts";
import { bar, converge, resolveImage } from "./commands.ts";
import { applyUpdateFlags, type UpdateFlags } from "./update-flags.ts";

const inspect = (dataRoot: string, ref: string) =>
	call<StoredService>(dataRoot, "POST", "/v1/services/inspect", { ref });

export async function serviceUpdate(
	ref: string,
	f: UpdateFlags & {
		force?: boolean;
		detach?: boolean;
		quiet?: boolean;
		rollback?: boolean;
		version?: string;
		dataRoot: string;
	},
): Promise<void> {
	if (f.rollback) return serviceRollback(ref, f);
	const cur = await inspect(f.dataRoot, ref);
	const spec = applyUpdateFlags({ ...cur.value.spec }, f);
	if (f.image !== undefined) {
		const resolved = await resolveImage(f.image);
		const task = spec.task as { container: { image: string }; placement: Record<string, unknown> };
		task.container.image = resolved.image;
		task.placement.platforms = resolved.platforms;
	}
	const version = f.version === undefined ? cur.version : Number(f.version);
	if (!Number.isSafeInteger(version) || version < 0)
		throw new CommandError(
			`invalid --version "${f.version}": use the service's version (service inspect)`,
			"ERR_USAGE",
		);
	const r = await call<StoredService>(f.dataRoot, "POST", "/v1/services/update", {
		ref: cur.id,
		spec,
		version,
		force: Boolean(f.force),
	});
	process.stdout.write(`${cur.value.spec.name}\n`);
	if (f.detach) return;
	if (r.value.specVersion === cur.value.specVersion) return converge(f.dataRoot, r.id, Boolean(f.quiet));
	await watchUpdate(f.dataRoot, r.id, "update", Boolean(f.quiet));
}

export async function serviceRollback(
	ref: string,
	f: { detach?: boolean; quiet?: boolean; version?: string; dataRoot: string },
): Promise<void> {
	const r = await call<StoredService>(f.dataRoot, "POST", "/v1/services/rollback", {
		ref,
		...(f.version !== undefined ? { version: Number(f.version) } : {}),
	});
	process.stdout.write(`${r.value.spec.name}\n`);
	if (!f.detach) await watchUpdate(f.dataRoot, r.id, "rollback", Boolean(f.quiet));
}

/**
 * docker's update progress: `overall progress: N out of M tasks` (tasks of the current version
 * running), a line per slot, then `verify: Service converged`, or the pause / rollback as an error.
 */
export async function watchUpdate(
	dataRoot: string,
	id: string,
	kind: "update" | "rollback",
	quiet: boolean,
	timeoutMs = 3_600_000,
): Promise<void> {
	const tty = process.stdout.isTTY && !quiet;
	const say = (s: string) => {
		if (!quiet) process.stdout.write(`${s}\n`);
	};
	const deadline = Date.now() + timeoutMs;
	let lastText = "";
	let lastState = "";
	let rollbackWhy: string | undefined;
	for (;;) {
		const svc = await inspect(dataRoot, id);
		const rows = await call<TaskRow[]>(dataRoot, "POST", "/v1/services/ps", { ref: id });
		const st = svc.value.updateStatus;
		if (st && st.state !== lastState) {
			if (st.state === "rollback_started") {
				if (tty && lastText) process.stdout.write(`\x1b[${lastText.split("\n").length}A\x1b[J`);
				lastText = "";
				rollbackWhy = st.message;
				say(`rollback: ${st.message ?? "rollback started"}`);
			}
			lastState = st.state;
		}
		const live = rows.filter((r) => r.desiredState === "running" || r.desiredState === "ready");
		const mode = svc.value.spec.mode;
		const want = mode.kind === "replicated" ? (mode.replicas ?? 0) : new Set(live.map((r) => r.nodeId)).size;
		const current = live.filter((r) => r.specVersion === undefined || r.specVersion === svc.value.specVersion);
		const done = new Set(current.filter((r) => r.state === "running").map((r) => r.slot ?? r.nodeId)).size;
		const lines = [`overall progress: ${Math.min(done, want)} out of ${want} tasks`];
		for (const r of [...current].sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0)).slice(0, 50)) {
			const label = r.slot !== undefined ? `${r.slot}/${want}` : r.node || r.nodeId?.slice(0, 12) || "?";
			lines.push(`${label}: ${r.state.padEnd(9)} ${r.error ? r.error : bar(r.state)}`);
		}
		const text = tty ? lines.join("\n") : lines[0]!;
		if (text !== lastText && !quiet) {
			if (tty && lastText) process.stdout.write(`\x1b[${lastText.split("\n").length}A\x1b[J`);
			process.stdout.write(`${text}\n`);
			lastText = text;
		}
		const state = st?.state ?? "completed";
		const end = state === "completed" || state.endsWith("paused") || state === "rollback_completed";
		if (end) {
			if (!tty && lines.length > 1) say(lines.slice(1).join("\n"));
			const name = svc.value.spec.name;
			if (state === "paused")
				throw new CommandError(`service ${name} update paused: ${st?.message ?? ""}`, "ERR_UPDATE_PAUSED");
			if (state === "rollback_paused")
				throw new CommandError(`service ${name} rollback paused: ${st?.message ?? ""}`, "ERR_ROLLBACK_PAUSED");
			if (state === "rollback_completed" && kind === "update") {
				say("rollback: rollback completed");
				throw new CommandError(
					`service ${name} rolled back: ${rollbackWhy ?? st?.message ?? ""}`,
					"ERR_UPDATE_ROLLED_BACK",
				);
			}
			say("verify: Service converged");
			return;
		}
		if (Date.now() > deadline)
			throw new CommandError(
				`service ${id} ${kind} did not finish within ${Math.round(timeoutMs / 1000)} s (tsswarm service inspect ${id})`,
				"ERR_NOT_CONVERGED",
			);
		await new Promise((r) => setTimeout(r, 300));
	}
}
