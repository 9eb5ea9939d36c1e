// Per table: its validator, how to read a record's unique name, and its secondary index keys.
// The state maintains the indexes from these definitions alone, so adding one is one line here.
import {
	validateCluster,
	validateConfigObject,
	validateNetwork,
	validateNode,
	validateSecret,
	validateService,
	validateTask,
} from "./objects.ts";
import type { IndexName, Table, TableTypes } from "./types.ts";

export interface TableDef<T extends Table> {
	validate(raw: unknown): TableTypes[T];
	/** Named tables: the unique name. */
	name?(v: TableTypes[T]): string;
	/** Secondary indexes: the key a record is found under (undefined: not indexed). */
	indexes: { [K in IndexName<T>]: (v: TableTypes[T]) => string | undefined };
}

export const TABLE_DEFS: { [T in Table]: TableDef<T> } = {
	cluster: { validate: validateCluster, indexes: {} },
	nodes: {
		validate: validateNode,
		indexes: { role: (n) => n.role, availability: (n) => n.availability },
	},
	services: { validate: validateService, name: (s) => s.spec.name, indexes: {} },
	tasks: {
		validate: validateTask,
		indexes: { serviceId: (t) => t.serviceId, nodeId: (t) => t.nodeId, desiredState: (t) => t.desiredState },
	},
	networks: { validate: validateNetwork, name: (n) => n.name, indexes: {} },
	secrets: { validate: validateSecret, name: (s) => s.name, indexes: {} },
	configs: { validate: validateConfigObject, name: (c) => c.name, indexes: {} },
};
