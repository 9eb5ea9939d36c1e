// Autolock: the cluster's unlock key lives in the cluster record, sealed with the cluster secret,
// and every manager keeps its own key file (DATA/cluster/keys) sealed with it: turned on, rotated or
// off on the leader, followed by each manager as the record changes. A restarted manager whose file
// is sealed stays locked until `tsswarm unlock`. The key is returned to whoever asked, never logged.
import {
	formatUnlockKey,
	keyFileLocked,
	type ManagerKeys,
	newKey,
	open,
	readKeyFile,
	SealedDataError,
	seal,
	writeKeyFile,
} from "../keyring/index.ts";
import { CLUSTER_ID, type ClusterStore, type StoreLogger } from "../store/index.ts";
import { NoClusterSecretError } from "./errors.ts";

const AAD = "cluster:unlock-key";

export type AutolockChange = "on" | "off" | "rotate";

/** The unlock key the store holds (undefined: autolock is off), opened with the cluster secret. */
export function storedUnlockKey(store: ClusterStore, keys: ManagerKeys): Uint8Array | undefined {
	const a = store.get("cluster", CLUSTER_ID)?.value.autolock;
	return a ? open(keys.clusterSecret, Buffer.from(a.sealedKey, "base64"), AAD) : undefined;
}

/** The cluster record's autolock field for a new key (init --autolock, on, rotate). */
export function sealedUnlockKey(keys: ManagerKeys, key: Uint8Array): { sealedKey: string; since: string } {
	return {
		sealedKey: Buffer.from(seal(keys.clusterSecret, key, AAD)).toString("base64"),
		since: new Date().toISOString(),
	};
}

/**
 * On the leader: turn autolock on (a new key unless it is on already), rotate the key, or turn it off.
 * Answers the unlock key now in force (formatted), or null when off, and the index that wrote it.
 */
export async function changeAutolock(
	store: ClusterStore,
	keys: ManagerKeys | undefined,
	change: AutolockChange,
): Promise<{ unlockKey: string | null; index: number }> {
	if (!keys) throw new NoClusterSecretError("autolock");
	const rec = store.get("cluster", CLUSTER_ID);
	if (!rec) throw new NoClusterSecretError("autolock before the cluster record exists");
	const current = storedUnlockKey(store, keys);
	if (change === "on" && current) return { unlockKey: formatUnlockKey(current), index: rec.version };
	if (change === "off" && !current) return { unlockKey: null, index: rec.version };
	const { autolock: _, ...rest } = rec.value;
	const key = change === "off" ? undefined : newKey();
	const value = key ? { ...rest, autolock: sealedUnlockKey(keys, key) } : rest;
	const { index } = await store.commit([
		{ op: "update", table: "cluster", id: CLUSTER_ID, version: rec.version, value },
	]);
	return { unlockKey: key ? formatUnlockKey(key) : null, index };
}

/**
 * Keep this manager's key file sealed as the cluster record says: with the stored unlock key, or
 * in the clear when autolock is off. Runs now and on every change of the record; returns the stop.
 */
export function followAutolock(store: ClusterStore, keys: ManagerKeys, keyFile: string, log: StoreLogger): () => void {
	let applied: string | undefined | null = null; // the sealedKey last made true on disk (null: none yet)
	const apply = () => {
		const rec = store.get("cluster", CLUSTER_ID);
		if (!rec) return; // nothing replayed yet: never unseal the file on an empty state
		const sealed = rec.value.autolock?.sealedKey;
		if (sealed === applied) return;
		try {
			const key = storedUnlockKey(store, keys);
			if (!key) {
				if (keyFileLocked(keyFile)) {
					writeKeyFile(keyFile, keys);
					log.info({ keyFile }, "autolock off: the key file is no longer sealed");
				}
			} else if (!opensWith(keyFile, key)) {
				writeKeyFile(keyFile, keys, key);
				log.info({ keyFile }, "autolock: the key file is sealed with the cluster's current unlock key");
			}
			applied = sealed;
		} catch (err) {
			log.error({ keyFile, err: (err as Error).message }, "could not follow the cluster's autolock setting");
		}
	};
	const onChange = (ev: { table: string }) => {
		if (ev.table === "cluster") apply();
	};
	store.on("change", onChange);
	store.on("restored", apply);
	apply();
	return () => {
		store.off("change", onChange);
		store.off("restored", apply);
	};
}

function opensWith(keyFile: string, key: Uint8Array): boolean {
	if (!keyFileLocked(keyFile)) return false;
	try {
		readKeyFile(keyFile, key);
		return true;
	} catch (err) {
		if (err instanceof SealedDataError) return false;
		throw err;
	}
}
