// StackApi on the local API: services and networks through the typed routes, secrets and configs
// through their routes (secret.create/ls/inspect/rm/update, config.* alike), typed here until
// the shared route table has them.
import { ApiClient } from "../../agent/api/index.ts";
import { client } from "../api.ts";
import type { ObjectInfo, StackApi } from "./deploy.ts";
import type { ObjectKind } from "./objects.ts";

interface ObjectRoutes {
	"GET /v1/secrets": { response: ObjectInfo[] };
	"POST /v1/secrets/create": {
		body: { name: string; data: string; labels: Record<string, string> };
		response: ObjectInfo;
	};
	"POST /v1/secrets/update": {
		body: { ref: string; data: string; labels: Record<string, string> };
		response: ObjectInfo;
	};
	"POST /v1/secrets/rm": { body: { ref: string }; response: unknown };
	"GET /v1/configs": { response: ObjectInfo[] };
	"POST /v1/configs/create": {
		body: { name: string; data: string; labels: Record<string, string> };
		response: ObjectInfo;
	};
	"POST /v1/configs/update": {
		body: { ref: string; data: string; labels: Record<string, string> };
		response: ObjectInfo;
	};
	"POST /v1/configs/rm": { body: { ref: string }; response: unknown };
}

export function stackApi(o: { dataRoot: string }): StackApi {
	const api = client(o);
	const objects = new ApiClient<ObjectRoutes>(api.socket);
	const base = (k: ObjectKind) => (k === "secret" ? "/v1/secrets" : "/v1/configs") as "/v1/secrets";
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
