// Docker-style tables: left-aligned columns separated by three spaces, no trailing blanks.
export function printTable(rows: string[][], sep = "   "): void {
	const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
	for (const r of rows)
		process.stdout.write(
			`${r
				.map((c, i) => c.padEnd(widths[i]!))
				.join(sep)
				.trimEnd()}\n`,
		);
}
