// One side of bench/pull, run inside the namespace that reaches the registry:
//   node rounds.ts <ref> <work dir> <rounds>
// Each round pulls busybox linux/amd64 into a fresh store, timed in this process (a worker pulls in
// its long-lived agent): the full pull (download + verify + unpack) and the download + verify alone
// (RegistryClient, no unpack). Round 0 warms the code up and is not reported.
// Prints one JSON line {"full":[ms...],"download":[ms...]}.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, parseReference, RegistryClient } from "../../runtime/index.ts";

const [ref, work, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
// The lab registry speaks plain http, like any registry listed as insecure.
const insecureRegistries = [parseReference(ref!).registry];
const full: number[] = [];
const download: number[] = [];
for (let i = 0; i <= rounds; i++) {
	let t0 = performance.now();
	await new ImageStore({ root: join(work!, `full-${i}`), insecureRegistries }).pull(ref!, { platform: "linux/amd64" });
	if (i > 0) full.push(performance.now() - t0);
	// The same bytes fetched and digest-checked, without unpacking: what skopeo copy does.
	const dir = join(work!, `dl-${i}`);
	mkdirSync(dir, { recursive: true });
	t0 = performance.now();
	const r = parseReference(ref!);
	const client = new RegistryClient({ insecureRegistries });
	const index = await client.manifest(r, r.tag!);
	const entries = (index.json.manifests ?? []) as Array<{ digest: string; platform?: { architecture: string } }>;
	const pick = entries.find((e) => e.platform?.architecture === "amd64");
	const m = pick ? await client.manifest(r, pick.digest) : index;
	const man = m.json as { config: { digest: string }; layers: Array<{ digest: string }> };
	await Promise.all([man.config, ...man.layers].map((b) => client.blob(r, b.digest, join(dir, b.digest.slice(7)))));
	if (i > 0) download.push(performance.now() - t0);
}
process.stdout.write(`${JSON.stringify({ full, download })}\n`);
