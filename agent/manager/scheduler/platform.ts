// Platform matching as docker/containerd does it: architectures normalised (x86_64 → amd64,
// aarch64 → arm64, armhf → arm/v7), default variants (arm64 → v8, arm → v7, amd64 → v1), and a node
// of variant vN runs images of variant ≤ vN of its architecture (arm/v7 runs arm/v6; amd64/v3 runs v2).
import type { SchedPlatform } from "./types.ts";

export interface NormalPlatform {
	os: string;
	architecture: string;
	/** "" when the default for the architecture. */
	variant: string;
	/** The variant as a number for ordering (v7 → 7, v8.2 → 8.2); NaN when not of that form. */
	level: number;
}

const DEFAULT_LEVEL: Record<string, number> = { amd64: 1, arm64: 8, arm: 7 };

export function normalizePlatform(p: SchedPlatform): NormalPlatform {
	const os = (p.os ?? "").toLowerCase();
	let architecture = (p.architecture ?? "").toLowerCase();
	let variant = (p.variant ?? "").toLowerCase();
	switch (architecture) {
		case "x86_64":
		case "x86-64":
			architecture = "amd64";
			break;
		case "aarch64":
			architecture = "arm64";
			break;
		case "armhf":
			architecture = "arm";
			variant ||= "v7";
			break;
		case "armel":
			architecture = "arm";
			variant ||= "v6";
			break;
		case "i386":
		case "i686":
			architecture = "386";
			break;
	}
	if (/^\d+(\.\d+)?$/.test(variant)) variant = `v${variant}`;
	let level = variant === "" ? (DEFAULT_LEVEL[architecture] ?? Number.NaN) : Number.NaN;
	const m = /^v(\d+(?:\.\d+)?)$/.exec(variant);
	if (m) level = Number(m[1]);
	if (DEFAULT_LEVEL[architecture] === level) variant = "";
	return { os, architecture, variant, level };
}

/** Can a node of platform `node` run an image built for `image`? Empty os/arch in the image: any. */
export function platformSatisfies(image: NormalPlatform, node: NormalPlatform): boolean {
	if (image.os !== "" && image.os !== node.os) return false;
	if (image.architecture === "") return true;
	if (image.architecture !== node.architecture) return false;
	if (image.variant === node.variant) return true;
	if (image.variant === "" && Number.isNaN(image.level)) return true;
	return !Number.isNaN(image.level) && !Number.isNaN(node.level) && image.level <= node.level;
}

export function formatPlatform(p: NormalPlatform): string {
	const variant = p.variant === "" && p.architecture === "arm" ? "v7" : p.variant;
	return [p.os || "any", p.architecture || "any", ...(variant ? [variant] : [])].join("/");
}
