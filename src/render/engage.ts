/** Text renderings of engagements, after Telepresence's. */
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
  if (r.ports.length > 0) rows.push(['   Port forwards', 'agent -> the session’s namespace']);
  const lines = [`Using ${r.kind} ${r.name} (${r.mode})`, alignRows(rows)];
  for (const p of r.ports) {
    lines.push(
      `       ${p.port} -> ${p.local} ${p.protocol}${p.name === undefined ? '' : ` (${p.name})`}`,
    );
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
