// The programs a benchmark compares with (etcd, serf, dockerd) come from Debian: a bench installs
// the one it needs when it is missing, as bootstrap.sh does for the tests, so a fresh machine runs
// every bench. Idempotent: a binary already on PATH means no apt call at all.
import { spawnSync } from "node:child_process";

export interface PeerPackage {
	/** The binary the bench runs; its presence on PATH (or as an absolute path) means installed. */
	bin: string;
	/** The Debian package that provides it. */
	pkg: string;
	/** systemd units the package starts on install that must not run in the host namespace. */
	disableUnits?: string[];
}

export interface PeerRunner {
	/** Runs argv; returns its exit status (null when it could not be started) and stderr. */
	run(argv: string[], env?: NodeJS.ProcessEnv): { status: number | null; stderr: string };
	log(message: string): void;
}

const defaultRunner: PeerRunner = {
	run(argv, env) {
		const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env, encoding: "utf8" });
		return { status: r.status, stderr: r.stderr ?? String(r.error ?? "") };
	},
	log: (m) => process.stderr.write(`[peers] ${m}\n`),
};

export class PeerInstallError extends Error {
	static readonly code = "PEER_INSTALL_FAILED";
	readonly code = PeerInstallError.code;
	constructor(pkg: string, bin: string, detail: string) {
		super(`could not install the peer ${bin} (apt-get install ${pkg}): ${detail}`);
		this.name = "PeerInstallError";
	}
}

function present(bin: string, r: PeerRunner): boolean {
	if (bin.startsWith("/")) return r.run(["test", "-x", bin]).status === 0;
	return r.run(["sh", "-c", `command -v "$1" >/dev/null`, "sh", bin]).status === 0;
}

/**
 * Installs each package whose binary is missing (apt-get update once, then one apt-get install);
 * returns the packages it installed. Waits for a dpkg lock held by someone else instead of failing.
 */
export function ensurePeers(peers: PeerPackage[], r: PeerRunner = defaultRunner): string[] {
	const missing = peers.filter((p) => !present(p.bin, r));
	if (missing.length === 0) return [];
	const pkgs = [...new Set(missing.map((p) => p.pkg))];
	r.log(`installing ${pkgs.join(", ")} (missing: ${missing.map((p) => p.bin).join(", ")})`);
	const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
	const lock = ["-o", "DPkg::Lock::Timeout=600"];
	const up = r.run(["apt-get", ...lock, "-qq", "update"], env);
	if (up.status !== 0) r.log(`apt-get update exited ${up.status}; trying the install anyway: ${up.stderr.trim()}`);
	const inst = r.run(["apt-get", ...lock, "-y", "-qq", "--no-install-recommends", "install", ...pkgs], env);
	if (inst.status !== 0) throw new PeerInstallError(pkgs.join(" "), missing[0]!.bin, inst.stderr.trim().slice(-500));
	// Where systemd runs, a package's service starts on install: stop it (the bench starts its own).
	const units = missing.flatMap((p) => p.disableUnits ?? []);
	if (units.length > 0 && present("systemctl", r)) r.run(["systemctl", "disable", "--now", ...units]);
	for (const p of missing) {
		if (!present(p.bin, r))
			throw new PeerInstallError(p.pkg, p.bin, `the package installed but ${p.bin} is still not found`);
	}
	return pkgs;
}
