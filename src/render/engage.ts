/** Text renderings of engagements, after Telepresence's. */
import { describeFilter } from '../engage/filters.js';
import type { EngageResult, LeaveResult } from '../engage/engage.js';
import { alignRows } from '../cli/format.js';

export function renderEngagement(r: EngageResult): string {
  const rows: [string, string][] = [
    ['   Container name', r.container],
    ['   State', r.state],
    ['   Workload kind', r.kind],
    ['   Namespace', r.namespace],
    ['   Pods', r.pods.join(', ') || '(none ready)'],
  ];
  if (r.tap !== undefined) {
    rows.push([
      '   Service',
      `${r.tap.service}:${r.tap.port} -> container port ${r.tap.targetPort}`,
    ]);
    rows.push(['   Intercepting', describeFilter(r.tap.filter)]);
  }
  if (r.ports.length > 0) rows.push(['   Port forwards', 'agent -> the session’s namespace']);
  const volumeRows: [string, string][] = [];
  if (r.mountPoint !== undefined) volumeRows.push(['   Volume Mount Point', r.mountPoint]);
  if (r.mounts.length > 0) volumeRows.push(['   Volumes', 'copied into Docker volumes']);
  // One width for both blocks, which the port lines separate.
  const width = Math.max(...[...rows, ...volumeRows].map(([k]) => k.length));
  const pad = (rs: [string, string][]): [string, string][] =>
    rs.map(([k, v]) => [k.padEnd(width), v]);
  const lines = [`Using ${r.kind} ${r.name} (${r.mode})`, alignRows(pad(rows))];
  for (const p of r.ports) {
    lines.push(
      `       ${p.port} -> ${p.local} ${p.protocol}${p.name === undefined ? '' : ` (${p.name})`}`,
    );
  }
  if (volumeRows.length > 0) lines.push(alignRows(pad(volumeRows)));
  const writtenBack = new Set(r.writeBack?.paths ?? []);
  for (const m of r.mounts) {
    const access = m.readOnly ? ' (read-only)' : writtenBack.has(m.path) ? ' (written back)' : '';
    lines.push(`       ${m.path} -> ${m.notMounted ?? `${m.volume}${access}`}`);
  }
  if (r.envFile !== undefined) lines.push(`   Env file: ${r.envFile}`);
  if (r.envJson !== undefined) lines.push(`   Env JSON: ${r.envJson}`);
  if (r.envSkipped.length > 0) {
    lines.push(
      `   Not in the env file (line breaks; the JSON has them): ${r.envSkipped.join(', ')}`,
    );
  }
  if (r.state === 'ACTIVE' && r.exitCode === undefined) {
    lines.push(`End it with: tp leave ${r.workload}`);
  }
  return lines.join('\n');
}

export function renderLeave(r: LeaveResult): string {
  if (!r.left) return `Session ${r.session} does not engage ${r.workload}; nothing to do.`;
  return r.restored
    ? `Left ${r.workload}; it is restored to what it was.`
    : `Left ${r.workload}; other sessions still engage it.`;
}
