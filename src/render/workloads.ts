import { describeFilter } from '../engage/filters.js';
import type { Engagement } from '../k8s/workloads.js';
import type { ListResult } from '../session/list.js';

const past: Record<string, string> = {
  replace: 'replaced',
  ingest: 'ingested',
  intercept: 'intercepted',
  wiretap: 'wiretapped',
};

/**
 * `replaced by s1`, `ingested by s1, s2`, `intercepted by s1 (HTTP requests with header
 * 'X-User: alice')`: as Telepresence lists engagements.
 */
function engagedText(engagements: readonly Engagement[]): string {
  const byMode = new Map<string, string[]>();
  const who = (e: Engagement): string =>
    e.mode === 'intercept' || e.mode === 'wiretap'
      ? `${e.session} (${describeFilter(e.filter)})`
      : e.session;
  for (const e of engagements) byMode.set(e.mode, [...(byMode.get(e.mode) ?? []), who(e)]);
  return [...byMode]
    .map(([mode, sessions]) => `${past[mode] ?? mode} by ${sessions.join(', ')}`)
    .join('; ');
}

export function renderWorkloads(r: ListResult): string {
  if (r.workloads.length === 0)
    return `No workloads in namespace ${r.namespace} (context ${r.context}).`;
  const rows = r.workloads.map((w) => {
    const ports = w.containers
      .flatMap((c) => c.ports.map((p) => `${p.name ?? p.port}/${p.protocol.toLowerCase()}`))
      .join(',');
    const state = w.state === 'engaged' ? engagedText(w.engagements) : w.state;
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
