// StackApi on the local API: services, networks, secrets and configs through the typed routes
// (agent/api/types.ts); a secret's or config's answer is reduced to what a stack needs (id, name,
// labels), never its data.
import type { ConfigInspect, SecretInspect } from "../../agent/api/index.ts";
import { client } from "../api.ts";
import type { ObjectInfo, StackApi } from "./deploy.ts";

const info = (x: SecretInspect | ConfigInspect): ObjectInfo => ({ id: x.ID, name: x.Spec.Name, labels: x.Spec.Labels });

export function stackApi(o: { dataRoot: string }): StackApi {
	const api = client(o);
	return {
		networks: () => api.call("GET /v1/networks"),
		createNetwork: (body) => api.call("POST /v1/networks", { body }),
		removeNetwork: (ref) => api.call("DELETE /v1/networks/:ref", { params: { ref } }),
		services: () => api.call("GET /v1/services"),
		inspect: (ref) => api.call("POST /v1/services/inspect", { body: { ref } }),
		validate: (spec) => api.call("POST /v1/services/validate", { body: { spec } }),
		create: (spec) => api.call("POST /v1/services/create", { body: { spec } }),
		update: (ref, spec, version) => api.call("POST /v1/services/update", { body: { ref, spec, version } }),
		remove: (ref) => api.call("POST /v1/services/rm", { body: { ref } }),
		tasks: (ref) => api.call("POST /v1/services/ps", { body: { ref } }),
		objects: async (k) =>
			(k === "secret" ? await api.call("GET /v1/secrets") : await api.call("GET /v1/configs")).map(info),
		createObject: async (k, body) =>
			info(
				k === "secret"
					? await api.call("POST /v1/secrets/create", { body })
					: await api.call("POST /v1/configs/create", { body }),
			),
		updateObject: async (k, ref, o) => {
			const body = { ref, ...o };
			return info(
				k === "secret"
					? await api.call("POST /v1/secrets/update", { body })
					: await api.call("POST /v1/configs/update", { body }),
			);
		},
		removeObject: (k, ref) =>
			k === "secret"
				? api.call("POST /v1/secrets/rm", { body: { ref } })
				: api.call("POST /v1/configs/rm", { body: { ref } }),
	};
}
