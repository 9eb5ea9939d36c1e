// The default seccomp profile: what Docker's default profile keeps from containers, as a deny
// list over an allow default — kernel keyrings (not namespaced), module and kexec loading, clock
// and swap control, mount and namespace creation (user namespaces above all), BPF, perf,
// userfaultfd, handle-based opens, process memory access across processes, and the obsolete or
// dangerous rest. clone3 answers ENOSYS so libc falls back to clone, whose namespace flags can be
// inspected. Filters are for the host's architectures: under qemu-user the emulator makes the
// host's system calls.
import { readFileSync } from "node:fs";
import { InvalidSpecError } from "../errors.ts";

const EPERM = 1;
const ENOSYS = 38;

const DENIED = [
	"acct",
	"add_key",
	"bpf",
	"clock_adjtime",
	"clock_settime",
	"create_module",
	"delete_module",
	"finit_module",
	"fsconfig",
	"fsmount",
	"fsopen",
	"fspick",
	"get_kernel_syms",
	"init_module",
	"ioperm",
	"iopl",
	"kcmp",
	"kexec_file_load",
	"kexec_load",
	"keyctl",
	"lookup_dcookie",
	"mount",
	"mount_setattr",
	"move_mount",
	"name_to_handle_at",
	"nfsservctl",
	"open_by_handle_at",
	"open_tree",
	"perf_event_open",
	"pivot_root",
	"process_vm_readv",
	"process_vm_writev",
	"query_module",
	"quotactl",
	"reboot",
	"request_key",
	"setns",
	"settimeofday",
	"stime",
	"swapoff",
	"swapon",
	"_sysctl",
	"sysfs",
	"umount",
	"umount2",
	"unshare",
	"uselib",
	"userfaultfd",
	"ustat",
	"vm86",
	"vm86old",
];

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME. */
const CLONE_NAMESPACE_FLAGS = [0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000, 0x80];

function architectures(): string[] {
	switch (process.arch) {
		case "x64":
			return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
		case "arm64":
			return ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];
		case "arm":
			return ["SCMP_ARCH_ARM"];
		default:
			return [];
	}
}

export function defaultSeccompProfile(): Record<string, unknown> {
	return {
		defaultAction: "SCMP_ACT_ALLOW",
		architectures: architectures(),
		syscalls: [
			{ names: DENIED, action: "SCMP_ACT_ERRNO", errnoRet: EPERM },
			{ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
			// clone(flags, ...) with a namespace flag, one rule per flag (rules are ORed); the flags
			// are the first argument on x86 and arm.
			...CLONE_NAMESPACE_FLAGS.map((flag) => ({
				names: ["clone"],
				action: "SCMP_ACT_ERRNO",
				errnoRet: EPERM,
				args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
			})),
		],
	};
}

/**
 * "default" (or undefined), "unconfined", or the path of a JSON profile in the OCI format (as
 * `docker run --security-opt seccomp=PATH`).
 */
export function seccompFor(opt: string | undefined): Record<string, unknown> | undefined {
	if (opt === undefined || opt === "default") return defaultSeccompProfile();
	if (opt === "unconfined") return undefined;
	let profile: unknown;
	try {
		profile = JSON.parse(readFileSync(opt, "utf8"));
	} catch (err) {
		throw new InvalidSpecError(`invalid seccomp profile ${opt}: ${(err as Error).message}`);
	}
	const p = profile as { defaultAction?: unknown; syscalls?: unknown };
	if (typeof p?.defaultAction !== "string" || (p.syscalls !== undefined && !Array.isArray(p.syscalls)))
		throw new InvalidSpecError(`invalid seccomp profile ${opt}: needs "defaultAction" and a "syscalls" array`);
	return profile as Record<string, unknown>;
}
