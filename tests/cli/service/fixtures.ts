// Shared by the service flag tests: update flags that change nothing.
import type { UpdateFlags } from "../../../cli/service/update-flags.ts";

export const noUpdateFlags: UpdateFlags = {
	envAdd: [],
	envRm: [],
	labelAdd: [],
	labelRm: [],
	containerLabelAdd: [],
	containerLabelRm: [],
	mountAdd: [],
	mountRm: [],
	networkAdd: [],
	networkRm: [],
	publishAdd: [],
	publishRm: [],
	constraintAdd: [],
	constraintRm: [],
	placementPrefAdd: [],
	placementPrefRm: [],
	capAdd: [],
	capDrop: [],
	healthcheck: true,
};
