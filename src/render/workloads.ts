import type { ListResult } from '../session/list.js';

export function renderWorkloads(r: ListResult): string {
  if (r.workloads.length === 0)
    return `No workloads in namespace ${r.namespace} (context ${r.context}).`;
  const rows = r.workloads.map((w) => {
    const ports = w.containers
      .flatMap((c) => c.ports.map((p) => `${p.name ?? p.port}/${p.protocol.toLowerCase()}`))
      .join(',');
    const state =
      w.state === 'engaged' && w.engagedBy !== undefined
        ? `engaged: ${w.engagedBy.mode} by session ${w.engagedBy.session}`
        : w.state;
    return [
      `${w.kind.toLowerCase()}/${w.name}`,
      `${w.replicas.ready}/${w.replicas.desired}`,
      ports || '-',
      state,
    ];
  });
  const header = ['WORKLOAD', 'READY', 'PORTS', 'STATE'];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cols: string[]): string =>
    cols
      .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [`Namespace ${r.namespace} (context ${r.context}):`, line(header), ...rows.map(line)].join(
    '\n',
  );
}
