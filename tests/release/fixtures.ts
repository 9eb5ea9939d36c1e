// Shared by the release tests: one release build per test file (into a temp dir, removed at the
// end) and a PATH made of the system's bin directories minus chosen programs (node, nft, ...).
import { readdirSync, realpathSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { type Platform, type Release, release } from "../../scripts/release/build.ts";
import { tempDir } from "../helpers/index.ts";

/** Builds the release for `platforms` (with `version`, else package.json's) before the file's first test. */
export function releaseFixture(platforms: Platform[], version?: string): { get(): Release; dir: string } {
	const dir = tempDir("tsswarm-release-");
	t.teardown(dir.remove);
	let built: Release | undefined;
	t.before(async () => {
		// Offline: bootstrap fetched the Node binaries; tests reach no registry.
		built = await release({ out: dir.path, platforms, offline: true, ...(version ? { version } : {}) });
	});
	return {
		dir: dir.path,
		get: () => {
			if (!built) throw new Error("the release was not built");
			return built;
		},
	};
}

/** A directory of links to every program in the system bin dirs except `without`; use it as PATH. */
export function pathWithout(without: string[]): string {
	const dir = tempDir("tsswarm-path-");
	t.teardown(dir.remove);
	const seen = new Set<string>();
	for (const d of ["/usr/local/sbin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
		let real: string;
		try {
			real = realpathSync(d);
		} catch {
			continue;
		}
		if (seen.has(real)) continue;
		seen.add(real);
		for (const f of readdirSync(real)) {
			if (without.includes(f)) continue;
			try {
				symlinkSync(join(real, f), join(dir.path, f));
			} catch {} // the same name in an earlier dir wins, as on a PATH
		}
	}
	return dir.path;
}
