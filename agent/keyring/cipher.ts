// The data key as raft-ts's RecordCipher: a manager's Raft log and snapshots are sealed with it
// (encryption at rest), each record bound to where it sits (the log and the snapshot store choose
// the associated data).
import type { RecordCipher } from "../../consensus/index.ts";
import { open, seal } from "./seal.ts";

export function dataCipher(dataKey: Uint8Array): RecordCipher {
	return { seal: (plain, aad) => seal(dataKey, plain, aad), open: (sealed, aad) => open(dataKey, sealed, aad) };
}
