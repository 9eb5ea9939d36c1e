// Preloaded (--import) into an agent run from source by lazy.test.ts: appends the URL of every
// module it loads to $TSSWARM_LOAD_TRACE, so a test can tell which parts a role evaluated.
import { appendFileSync } from "node:fs";
import { registerHooks } from "node:module";

const trace = process.env.TSSWARM_LOAD_TRACE;
if (trace)
	registerHooks({
		load(url, context, next) {
			appendFileSync(trace, `${url}\n`);
			return next(url, context);
		},
	});
