// Docker-style image references and os/arch/variant platforms.
import { arch as hostArch } from "node:os";
import { InvalidPlatformError, InvalidReferenceError } from "./errors.ts";

export interface Reference {
	/** Registry host[:port] as dialed (docker.io is registry-1.docker.io). */
	registry: string;
	repository: string;
	tag?: string;
	digest?: string;
	/** The canonical name: registry/repository:tag or @digest. */
	canonical: string;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

export function parseReference(ref: string): Reference {
	if (!ref || ref.length > 512) throw new InvalidReferenceError(ref, "empty or too long");
	let rest = ref;
	let digest: string | undefined;
	const at = rest.indexOf("@");
	if (at >= 0) {
		digest = rest.slice(at + 1);
		rest = rest.slice(0, at);
		if (!DIGEST_RE.test(digest)) throw new InvalidReferenceError(ref, "digest must be sha256:<64 hex>");
	}
	let tag: string | undefined;
	const colon = rest.lastIndexOf(":");
	if (colon > rest.lastIndexOf("/")) {
		tag = rest.slice(colon + 1);
		rest = rest.slice(0, colon);
		if (!TAG_RE.test(tag)) throw new InvalidReferenceError(ref, `bad tag "${tag}"`);
	}
	const slash = rest.indexOf("/");
	const first = slash >= 0 ? rest.slice(0, slash) : "";
	let registry = "docker.io";
	let repository = rest;
	if (slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost")) {
		registry = first;
		repository = rest.slice(slash + 1);
	}
	if (registry === "docker.io" && !repository.includes("/")) repository = `library/${repository}`;
	if (!REPO_RE.test(repository)) throw new InvalidReferenceError(ref, `bad repository name "${repository}"`);
	if (!tag && !digest) tag = "latest";
	const canonical = `${registry}/${repository}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`;
	return { registry: registry === "docker.io" ? "registry-1.docker.io" : registry, repository, tag, digest, canonical };
}

export interface Platform {
	os: string;
	architecture: string;
	variant?: string;
}

const ARCH_ALIASES: Record<string, string> = {
	x86_64: "amd64",
	x64: "amd64",
	aarch64: "arm64",
	armhf: "arm",
	armel: "arm",
};

/** linux/arm64 (-> variant v8), linux/arm (-> v7), linux/arm/v6, linux/amd64 ... */
export function parsePlatform(s: string): Platform {
	const parts = s.split("/");
	if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_]+$/.test(p)))
		throw new InvalidPlatformError(s);
	const os = parts[0]!;
	const architecture = ARCH_ALIASES[parts[1]!] ?? parts[1]!;
	let variant = parts[2];
	if (architecture === "arm64" && !variant) variant = "v8";
	if (architecture === "arm" && !variant) variant = "v7";
	if (architecture === "arm" && !["v5", "v6", "v7", "v8"].includes(variant!)) throw new InvalidPlatformError(s);
	return { os, architecture, variant };
}

/** The canonical form of a platform from an image (arm64 -> arm64/v8, arm -> arm/v7, aarch64 -> arm64). */
export function normalizePlatform(p: Platform): Platform {
	const architecture = ARCH_ALIASES[p.architecture] ?? p.architecture;
	let variant = p.variant || undefined;
	if (architecture === "arm64" && !variant) variant = "v8";
	if (architecture === "arm" && !variant) variant = "v7";
	if (architecture === "amd64" && variant === "v1") variant = undefined; // v1 is plain amd64
	return { os: p.os, architecture, variant };
}

export function hostPlatform(): Platform {
	const a = hostArch();
	if (a === "arm64") return { os: "linux", architecture: "arm64", variant: "v8" };
	if (a === "arm") return { os: "linux", architecture: "arm", variant: "v7" };
	return { os: "linux", architecture: ARCH_ALIASES[a] ?? a };
}

export const formatPlatform = (p: Platform) => [p.os, p.architecture, p.variant].filter(Boolean).join("/");

/** Does an image's platform serve the wanted one? (arm64 images often omit the v8 variant.) */
export function platformMatches(have: Platform, want: Platform): boolean {
	if (have.os !== want.os || (ARCH_ALIASES[have.architecture] ?? have.architecture) !== want.architecture) return false;
	const hv = have.variant ?? (have.architecture === "arm64" ? "v8" : have.architecture === "arm" ? "v7" : undefined);
	return (hv ?? "") === (want.variant ?? "");
}
