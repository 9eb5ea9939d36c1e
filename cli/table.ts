// Docker-style tables: left-aligned columns separated by three spaces, no trailing blanks.
export function table(rows: string[][], sep = "   "): string {
	const n = Math.max(...rows.map((r) => r.length));
	const widths = Array.from({ length: n }, (_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
	return rows
		.map(
			(r) =>
				`${r
					.map((c, i) => c.padEnd(widths[i]!))
					.join(sep)
					.trimEnd()}\n`,
		)
		.join("");
}

export function printTable(rows: string[][], sep = "   "): void {
	process.stdout.write(table(rows, sep));
}
