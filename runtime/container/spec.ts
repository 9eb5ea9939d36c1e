// The OCI runtime spec (config.json) for a container: image config + the user's overrides, with
// Docker's defaults for capabilities, masked and read-only /proc paths and no-new-privileges.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidSpecError } from "../errors.ts";
import type { ImageConfig } from "../image/index.ts";
import type { HealthcheckSpec } from "./health.ts";
import { parseCpus, parseMemory, parsePidsLimit } from "./limits.ts";
import { seccompFor } from "./seccomp.ts";

export interface Mount {
	source: string;
	target: string;
	readonly?: boolean;
}

export interface ContainerSpec {
	image: string;
	platform?: string;
	name?: string;
	/** Replaces the image's Cmd (and, with entrypoint, its Entrypoint). */
	cmd?: string[];
	entrypoint?: string[];
	env?: string[];
	workdir?: string;
	user?: string;
	hostname?: string;
	memory?: string | number;
	cpus?: string | number;
	pidsLimit?: string | number;
	readOnly?: boolean;
	/** Bind mounts (source is a host path) and named volumes (source without a slash). */
	volumes?: Mount[];
	tmpfs?: string[];
	/** "none" (own namespace, loopback only; the default), "host", or a netns path to join. */
	network?: string;
	labels?: Record<string, string>;
	/** Capabilities added to / dropped from Docker's default set ("CAP_X" or "X"; "ALL"). */
	capAdd?: string[];
	capDrop?: string[];
	/** Resource limits of the container's processes (docker's --ulimit): nofile, nproc, core, ... */
	ulimits?: Ulimit[];
	healthcheck?: HealthcheckSpec;
	/** "default" (Docker's default restrictions), "unconfined", or the path of a JSON profile. */
	seccomp?: string;
	/**
	 * User namespace: "host" (none, the default, as Docker) or a mapping of container uid/gid 0..size-1
	 * to host ids hostId.. ("remap" = 100000:65536, Docker's userns-remap default range).
	 */
	userns?: "host" | "remap" | { hostId: number; size: number };
	/** Remove the container once it exits (docker run --rm), even when detached. */
	autoRemove?: boolean;
	/** Log rotation for this container (default: the runtime's). */
	logMaxSize?: string | number;
	logMaxFiles?: number;
}

export interface Ulimit {
	/** The limit's name without RLIMIT_, lowercase: nofile, nproc, core, memlock, stack, ... */
	name: string;
	/** -1: unlimited. */
	soft: number;
	hard: number;
}

/** The rlimits runc knows (setrlimit(2)), by docker's --ulimit names. */
export const ULIMITS = [
	"as",
	"core",
	"cpu",
	"data",
	"fsize",
	"locks",
	"memlock",
	"msgqueue",
	"nice",
	"nofile",
	"nproc",
	"rss",
	"rtprio",
	"rttime",
	"sigpending",
	"stack",
];

const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** OCI process.rlimits: a bad name, a negative value or soft above hard is an InvalidSpecError. */
export function rlimits(list: Ulimit[]): Array<{ type: string; soft: number; hard: number }> {
	const seen = new Set<string>();
	return list.map((u) => {
		if (!ULIMITS.includes(u.name)) throw new InvalidSpecError(`unknown ulimit "${u.name}" (use ${ULIMITS.join(", ")})`);
		if (seen.has(u.name)) throw new InvalidSpecError(`ulimit ${u.name} is given twice`);
		seen.add(u.name);
		for (const x of [u.soft, u.hard])
			if (!Number.isSafeInteger(x) || x < -1)
				throw new InvalidSpecError(`ulimit ${u.name}: ${x} is not a limit (-1: unlimited)`);
		// -1 (unlimited): the largest value JSON carries exactly; runc's RLIM_INFINITY (2^64-1) it cannot.
		const [soft, hard] = [u.soft, u.hard].map((x) => (x === -1 ? UNLIMITED : x)) as [number, number];
		if (soft > hard) throw new InvalidSpecError(`ulimit ${u.name}: soft ${u.soft} is above hard ${u.hard}`);
		return { type: `RLIMIT_${u.name.toUpperCase()}`, soft, hard };
	});
}

export const DEFAULT_CAPS = [
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
];

const MASKED = [
	"/proc/asound",
	"/proc/acpi",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
];
const READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** "uid[:gid]" or "name[:group]" looked up in the image's /etc/passwd and /etc/group. */
export function resolveUser(user: string | undefined, rootfs: string): { uid: number; gid: number } {
	if (!user) return { uid: 0, gid: 0 };
	const [u, g] = user.split(":");
	const lookup = (file: string, name: string): number | undefined => {
		try {
			for (const line of readFileSync(join(rootfs, "etc", file), "utf8").split("\n")) {
				const f = line.split(":");
				if (f[0] === name) return Number(f[2]);
			}
		} catch {}
		return undefined;
	};
	const uid = /^\d+$/.test(u!) ? Number(u) : lookup("passwd", u!);
	if (uid === undefined) throw new InvalidSpecError(`user "${u}" is not in the image's /etc/passwd`);
	let gid: number | undefined;
	if (g !== undefined) {
		gid = /^\d+$/.test(g) ? Number(g) : lookup("group", g);
		if (gid === undefined) throw new InvalidSpecError(`group "${g}" is not in the image's /etc/group`);
	} else {
		try {
			const line = readFileSync(join(rootfs, "etc", "passwd"), "utf8")
				.split("\n")
				.find((l) => l.split(":")[2] === String(uid));
			gid = line ? Number(line.split(":")[3]) : 0;
		} catch {
			gid = 0;
		}
	}
	return { uid, gid };
}

/** All capabilities the kernel knows (capability.h), for capAdd: ["ALL"]. */
const ALL_CAPS = [
	"CHOWN",
	"DAC_OVERRIDE",
	"DAC_READ_SEARCH",
	"FOWNER",
	"FSETID",
	"KILL",
	"SETGID",
	"SETUID",
	"SETPCAP",
	"LINUX_IMMUTABLE",
	"NET_BIND_SERVICE",
	"NET_BROADCAST",
	"NET_ADMIN",
	"NET_RAW",
	"IPC_LOCK",
	"IPC_OWNER",
	"SYS_MODULE",
	"SYS_RAWIO",
	"SYS_CHROOT",
	"SYS_PTRACE",
	"SYS_PACCT",
	"SYS_ADMIN",
	"SYS_BOOT",
	"SYS_NICE",
	"SYS_RESOURCE",
	"SYS_TIME",
	"SYS_TTY_CONFIG",
	"MKNOD",
	"LEASE",
	"AUDIT_WRITE",
	"AUDIT_CONTROL",
	"SETFCAP",
	"MAC_OVERRIDE",
	"MAC_ADMIN",
	"SYSLOG",
	"WAKE_ALARM",
	"BLOCK_SUSPEND",
	"AUDIT_READ",
	"PERFMON",
	"BPF",
	"CHECKPOINT_RESTORE",
].map((c) => `CAP_${c}`);

/** Docker's rule: the default set, minus capDrop (ALL: none), plus capAdd (ALL: every one). */
export function effectiveCaps(add: string[] = [], drop: string[] = []): string[] {
	const norm = (c: string) => {
		const u = c.toUpperCase();
		if (u === "ALL") return u;
		const n = u.startsWith("CAP_") ? u : `CAP_${u}`;
		if (!ALL_CAPS.includes(n)) throw new InvalidSpecError(`unknown capability "${c}"`);
		return n;
	};
	const a = add.map(norm);
	const d = drop.map(norm);
	let caps = d.includes("ALL") ? [] : DEFAULT_CAPS.filter((c) => !d.includes(c));
	caps = a.includes("ALL") ? [...ALL_CAPS] : [...new Set([...caps, ...a])];
	return caps;
}

function mergeEnv(image: string[] = [], over: string[] = []): string[] {
	const m = new Map<string, string>();
	for (const e of [...image, ...over]) {
		const i = e.indexOf("=");
		if (i <= 0) throw new InvalidSpecError(`invalid environment entry "${e}": use NAME=value`);
		m.set(e.slice(0, i), e);
	}
	if (!m.has("PATH")) m.set("PATH", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	return [...m.values()];
}

/** The uid/gid range of a user namespace, or undefined for none. */
export function parseUserns(v: ContainerSpec["userns"]): { hostId: number; size: number } | undefined {
	if (v === undefined || v === "host") return undefined;
	if (v === "remap") return { hostId: 100_000, size: 65_536 };
	if (
		typeof v === "object" &&
		Number.isInteger(v.hostId) &&
		Number.isInteger(v.size) &&
		v.hostId > 0 &&
		v.size > 0 &&
		v.hostId + v.size <= 2 ** 32 - 1
	)
		return v;
	throw new InvalidSpecError(`invalid userns ${JSON.stringify(v)}: use "host", "remap" or { hostId, size }`);
}

export interface BuildInput {
	spec: ContainerSpec;
	image: ImageConfig;
	id: string;
	rootfs: string;
	cgroupsPath: string;
	volumeDir: (name: string) => string;
	/**
	 * Bring loopback up with a createRuntime hook. runc does it itself for a new network namespace
	 * (specconv adds a "loopback" network), so only other runtimes need it; the hook (sh, sed,
	 * nsenter, ip) cost ~18 ms of every start.
	 */
	loopbackHook?: boolean;
}

export function buildOciSpec(i: BuildInput): Record<string, unknown> {
	const s = i.spec;
	const ic = i.image.config ?? {};
	// Docker's rule: a new entrypoint drops the image's Cmd unless a command is given too.
	const entrypoint = s.entrypoint ?? ic.Entrypoint ?? [];
	const cmd = s.cmd ?? (s.entrypoint !== undefined ? [] : (ic.Cmd ?? []));
	const args = [...entrypoint, ...cmd];
	if (args.length === 0)
		throw new InvalidSpecError("no command: the image has no Cmd or Entrypoint and none was given");
	const { uid, gid } = resolveUser(s.user ?? ic.User, i.rootfs);
	const caps = s.capAdd || s.capDrop ? effectiveCaps(s.capAdd, s.capDrop) : DEFAULT_CAPS;
	const resources: Record<string, unknown> = { devices: [{ allow: false, access: "rwm" }] };
	if (s.memory !== undefined) resources.memory = { limit: parseMemory(s.memory), swap: parseMemory(s.memory) };
	if (s.cpus !== undefined) resources.cpu = parseCpus(s.cpus);
	if (s.pidsLimit !== undefined) resources.pids = { limit: parsePidsLimit(s.pidsLimit) };
	const mounts: Array<Record<string, unknown>> = [
		{ destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
		{
			destination: "/dev",
			type: "tmpfs",
			source: "tmpfs",
			options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
		},
		{
			destination: "/dev/pts",
			type: "devpts",
			source: "devpts",
			options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
		},
		{
			destination: "/dev/shm",
			type: "tmpfs",
			source: "shm",
			options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
		},
		{ destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
		{ destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
		{
			destination: "/sys/fs/cgroup",
			type: "cgroup",
			source: "cgroup",
			options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
		},
	];
	for (const t of s.tmpfs ?? [])
		mounts.push({ destination: t, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] });
	for (const v of s.volumes ?? []) {
		if (!v.target.startsWith("/")) throw new InvalidSpecError(`volume target "${v.target}" must be an absolute path`);
		const named = !v.source.includes("/");
		if (named && !/^[a-zA-Z0-9][\w.-]*$/.test(v.source))
			throw new InvalidSpecError(`invalid volume name "${v.source}"`);
		const source = named ? i.volumeDir(v.source) : v.source;
		mounts.push({ destination: v.target, type: "bind", source, options: ["rbind", v.readonly ? "ro" : "rw"] });
	}
	const seccomp = seccompFor(s.seccomp);
	const network = s.network ?? "none";
	const namespaces: Array<Record<string, string>> = [
		{ type: "pid" },
		{ type: "ipc" },
		{ type: "uts" },
		{ type: "mount" },
	];
	const userns = parseUserns(s.userns);
	const idMaps: Record<string, unknown> = {};
	if (userns) {
		namespaces.push({ type: "user" });
		const map = [{ containerID: 0, hostID: userns.hostId, size: userns.size }];
		idMaps.uidMappings = map;
		idMaps.gidMappings = map;
	}
	const hooks: Record<string, unknown> = {};
	if (network === "none") {
		namespaces.push({ type: "network" });
		// Docker brings loopback up; runc does it on its own (see BuildInput.loopbackHook).
		if (i.loopbackHook)
			hooks.createRuntime = [
				{
					path: "/bin/sh",
					args: [
						"sh",
						"-c",
						`pid=$(sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p'); exec nsenter -t "$pid" -n ip link set lo up`,
					],
				},
			];
	} else if (network !== "host") {
		namespaces.push({ type: "network", path: network });
	}
	return {
		ociVersion: "1.0.2",
		process: {
			terminal: false,
			user: { uid, gid },
			args,
			env: mergeEnv(ic.Env, s.env),
			cwd: s.workdir ?? (ic.WorkingDir || "/"),
			capabilities: {
				bounding: caps,
				effective: caps,
				permitted: caps,
				...(uid === 0 ? {} : { ambient: [] }),
			},
			noNewPrivileges: true,
			...(s.ulimits?.length ? { rlimits: rlimits(s.ulimits) } : {}),
		},
		root: { path: i.rootfs, readonly: s.readOnly ?? false },
		hostname: s.hostname ?? i.id.slice(0, 12),
		mounts,
		hooks,
		annotations: { "io.tsswarm.image": s.image, ...(s.labels ?? {}) },
		linux: {
			cgroupsPath: i.cgroupsPath,
			resources,
			namespaces,
			...idMaps,
			maskedPaths: MASKED,
			readonlyPaths: READONLY,
			...(seccomp ? { seccomp } : {}),
		},
	};
}
