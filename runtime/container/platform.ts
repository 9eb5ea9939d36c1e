// Can this machine run an image? Its platform natively or through a registered qemu binfmt handler;
// user namespaces where the kernel has them.
import { existsSync, readFileSync } from "node:fs";
import { PlatformUnsupportedError, RuntimeError } from "../errors.ts";
import { formatPlatform, hostPlatform, type Platform } from "../image/index.ts";

const HANDLERS: Record<string, string> = {
	arm64: "qemu-aarch64",
	arm: "qemu-arm",
	amd64: "qemu-x86_64",
	riscv64: "qemu-riscv64",
};

export function checkRunnable(p: Platform): "native" | "emulated" {
	const host = hostPlatform();
	if (p.os !== "linux") throw new PlatformUnsupportedError(formatPlatform(p), "only linux images run here");
	if (p.architecture === host.architecture) return "native";
	if (host.architecture === "arm64" && p.architecture === "arm") return "native"; // aarch32 on most arm64 CPUs
	const h = HANDLERS[p.architecture];
	const path = h ? `/proc/sys/fs/binfmt_misc/${h}` : undefined;
	if (!path || !existsSync(path)) {
		throw new PlatformUnsupportedError(
			formatPlatform(p),
			`no binfmt handler for ${p.architecture} (install qemu-user-static and binfmt-support)`,
		);
	}
	const text = readFileSync(path, "utf8");
	if (!text.startsWith("enabled"))
		throw new PlatformUnsupportedError(formatPlatform(p), `the ${h} binfmt handler is disabled`);
	if (!/flags:.*F/.test(text))
		throw new PlatformUnsupportedError(
			formatPlatform(p),
			`the ${h} binfmt handler lacks the F flag, so it cannot work inside a container`,
		);
	return "emulated";
}

/** User namespaces need kernel support and a non-zero limit; say so rather than fail inside runc. */
export function checkUserns(): void {
	let max = 0;
	try {
		max = Number(readFileSync("/proc/sys/user/max_user_namespaces", "utf8"));
	} catch {}
	if (!existsSync("/proc/self/ns/user") || max === 0)
		throw new RuntimeError(
			"user namespaces are not available on this kernel (no /proc/self/ns/user or user.max_user_namespaces = 0)",
			"ERR_USERNS_UNSUPPORTED",
		);
}
