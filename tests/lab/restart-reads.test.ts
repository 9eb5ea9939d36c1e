// A restarted manager replays its log only once it hears the commit index (here: once it has
// elected itself). Its API used to answer reads from the empty replica meanwhile: `network ls`
// without the networks, `service rm NAME` "not found". Reads now wait until the replica is current.
import t from "tap";
import { withLab } from "../helpers/lab.ts";
import { cli } from "../helpers/services.ts";

t.test("a restarted manager's first reads see its state", async (t) => {
	const lab = await withLab(t, { nodes: 1, cluster: true });
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "kept"]);
	const names = async () =>
		(JSON.parse(await cli(lab, "n1", ["network", "ls", "--format", "json"])) as Array<{ Name: string }>).map(
			(n) => n.Name,
		);
	t.ok((await names()).includes("kept"), "control: the network is listed before the restart");
	for (let round = 1; round <= 3; round++) {
		t.equal(await lab.stop("n1"), true, `round ${round}: lab stop n1`);
		t.equal(await lab.start("n1"), true, "lab start n1 (returns once the API socket answers)");
		const since = Date.now();
		const first = await names();
		t.ok(first.includes("kept"), `the first network ls after the start lists it (${Date.now() - since} ms)`);
	}
});
