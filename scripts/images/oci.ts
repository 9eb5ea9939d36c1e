// Writing an OCI image layout: content-addressed blobs, image manifests and configs, one image index
// per name, and the top-level index.json naming them (org.opencontainers.image.ref.name).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DebArch } from "./debs.ts";
import { FIXED_MTIME, type Layer, sha256 } from "./layer.ts";

export const MEDIA = {
	index: "application/vnd.oci.image.index.v1+json",
	manifest: "application/vnd.oci.image.manifest.v1+json",
	config: "application/vnd.oci.image.config.v1+json",
	layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Descriptor {
	mediaType: string;
	digest: string;
	size: number;
	platform?: { os: string; architecture: string; variant?: string };
	annotations?: Record<string, string>;
}

export class Layout {
	readonly dir: string;
	constructor(dir: string) {
		this.dir = dir;
		mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
		writeFileSync(join(dir, "oci-layout"), `${JSON.stringify({ imageLayoutVersion: "1.0.0" })}\n`);
	}

	writeBlob(mediaType: string, data: Buffer | string): Descriptor {
		const buf = Buffer.from(data);
		const digest = sha256(buf);
		writeFileSync(join(this.dir, "blobs", "sha256", digest.slice("sha256:".length)), buf);
		return { mediaType, digest, size: buf.length };
	}

	writeJson(mediaType: string, value: unknown): Descriptor {
		return this.writeBlob(mediaType, JSON.stringify(value));
	}

	writeIndex(named: Array<{ name: string; index: Descriptor }>): void {
		const manifests = named.map((n) => ({ ...n.index, annotations: { "org.opencontainers.image.ref.name": n.name } }));
		writeFileSync(
			join(this.dir, "index.json"),
			JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests }),
		);
	}
}

export interface ImageSpec {
	cmd: string[];
	env?: string[];
	exposedPorts?: string[];
	workingDir?: string;
	description: string;
}

/** One platform's image: config + manifest over the given layers (bottom first). */
export function writeImage(layout: Layout, arch: DebArch, layers: Layer[], spec: ImageSpec): Descriptor {
	for (const l of layers) layout.writeBlob(MEDIA.layerGzip, l.blob);
	const config = {
		created: FIXED_MTIME.toISOString(),
		architecture: arch.architecture,
		os: arch.os,
		...(arch.variant ? { variant: arch.variant } : {}),
		config: {
			Env: spec.env ?? ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],
			Cmd: spec.cmd,
			WorkingDir: spec.workingDir ?? "/",
			...(spec.exposedPorts ? { ExposedPorts: Object.fromEntries(spec.exposedPorts.map((p) => [p, {}])) } : {}),
		},
		rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
		history: layers.map(() => ({
			created: FIXED_MTIME.toISOString(),
			created_by: `tsswarm test image: ${spec.description}`,
		})),
	};
	const configDesc = layout.writeJson(MEDIA.config, config);
	const manifest = {
		schemaVersion: 2,
		mediaType: MEDIA.manifest,
		config: configDesc,
		layers: layers.map((l) => ({ mediaType: MEDIA.layerGzip, digest: l.digest, size: l.blob.length })),
	};
	const desc = layout.writeJson(MEDIA.manifest, manifest);
	return {
		...desc,
		platform: { os: arch.os, architecture: arch.architecture, ...(arch.variant ? { variant: arch.variant } : {}) },
	};
}

export function writeImageIndex(layout: Layout, manifests: Descriptor[]): Descriptor {
	return layout.writeJson(MEDIA.index, { schemaVersion: 2, mediaType: MEDIA.index, manifests });
}
