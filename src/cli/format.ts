/** `Key : value` lines with the colons aligned, the layout every tp report uses. */
export function alignRows(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  // A row without a key continues the one above it.
  return rows
    .map(([k, v]) => (k === '' ? `${''.padEnd(width)}   ${v}` : `${k.padEnd(width)} : ${v}`))
    .join('\n');
}
