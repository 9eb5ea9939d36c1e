// Option helpers every command registration shares (cheap: loaded on every start-up).

/** The data directory: TSSWARM_DATA_ROOT (the lab sets one per node) or /var/lib/tsswarm. */
export const dataRoot = () => process.env.TSSWARM_DATA_ROOT ?? "/var/lib/tsswarm";

/** For repeatable options: each occurrence appends. */
export const collect = (v: string, prev: string[] = []) => [...prev, v];
