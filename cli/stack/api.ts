// StackApi on the local API: services and networks through the typed routes, secrets and configs
// through their routes (secret.create/ls/inspect/rm/update, config.* alike), typed here until
// the shared route table has them.
import { ApiClient } from "../../agent/api/index.ts";
import { client } from "../api.ts";
import type { ObjectInfo, StackApi } from "./deploy.ts";
import type { ObjectKind } from "./objects.ts";

type Body = { data: string; labels: Record<string, string> };
type Kinds = "secrets" | "configs";
type ObjectRoutes = { [K in Kinds as `GET /v1/${K}`]: { response: ObjectInfo[] } } & {
	[K in Kinds as `POST /v1/${K}/create`]: { body: Body & { name: string }; response: ObjectInfo };
} & { [K in Kinds as `POST /v1/${K}/update`]: { body: Body & { ref: string }; response: ObjectInfo } } & {
	[K in Kinds as `POST /v1/${K}/rm`]: { body: { ref: string }; response: unknown };
};

export function stackApi(o: { dataRoot: string }): StackApi {
	const api = client(o);
	const objects = new ApiClient<ObjectRoutes>(api.socket);
	const base = (k: ObjectKind): `/v1/${Kinds}` => (k === "secret" ? "/v1/secrets" : "/v1/configs");
	return {
		networks: () => api.call("GET /v1/networks"),
		createNetwork: (body) => api.call("POST /v1/networks", { body }),
		removeNetwork: (ref) => api.call("DELETE /v1/networks/:ref", { params: { ref } }),
		services: () => api.call("GET /v1/services"),
		inspect: (ref) => api.call("POST /v1/services/inspect", { body: { ref } }),
		create: (spec) => api.call("POST /v1/services/create", { body: { spec } }),
		update: (ref, spec, version) => api.call("POST /v1/services/update", { body: { ref, spec, version } }),
		remove: (ref) => api.call("POST /v1/services/rm", { body: { ref } }),
		tasks: (ref) => api.call("POST /v1/services/ps", { body: { ref } }),
		objects: (k) => objects.call(`GET ${base(k)}`),
		createObject: (k, body) => objects.call(`POST ${base(k)}/create`, { body }),
		updateObject: (k, ref, o) => objects.call(`POST ${base(k)}/update`, { body: { ref, ...o } }),
		removeObject: (k, ref) => objects.call(`POST ${base(k)}/rm`, { body: { ref } }),
	};
}
