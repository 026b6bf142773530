/** Text renderings of sessions for connect, status and quit. */
import { describeFilter } from '../engage/filters.js';
import type { ConnectResult } from '../session/connect.js';
import type {
  SessionStatus,
  SessionSummary,
  StatusReport,
  StatusReports,
} from '../session/status.js';
import { alignRows } from '../cli/format.js';
import type { EngagementStatus } from '../contract/control.js';

export function renderConnect(r: ConnectResult): string {
  const head = r.created
    ? `${r.replaced ? `Ended the running session ${r.name}. ` : ''}Connected to context ${r.context} (${r.server}), namespace ${r.namespace}.`
    : `Already connected to context ${r.context} (${r.server}), namespace ${r.namespace}; nothing changed.`;
  return [
    head,
    alignRows([
      ['  daemon', r.name],
      ['  network', `${r.network} (containers on it are reached by name)`],
      ['  api', `${r.apiPath} (how the daemon reaches the API server)`],
      ['  routes', r.routes.join(', ')],
      [
        '  dns',
        r.status.dns.enabled
          ? `cluster names in ${r.namespace} first, then the previous resolver`
          : 'off',
      ],
    ]),
    `Run containers in the cluster's network with: docker run --network container:${r.name} IMAGE`,
    `Make a local container (a database) reachable by name: docker run --network ${r.network} --name db IMAGE`,
  ].join('\n');
}

/** One block per session, separated by a blank line, when there are several. */
export function renderStatusReport(r: StatusReport | StatusReports, name?: string): string {
  if ('sessions' in r) {
    return [
      `${r.sessions.length} sessions; pick one with --name <session> or TP_SESSION=<session>.`,
      ...r.sessions.map((s) => renderOne(s, name)),
    ].join('\n\n');
  }
  return renderOne(r, name);
}

function renderOne(r: StatusReport, name: string | undefined): string {
  if (r.session !== undefined) return renderStatus(r.session, r.status, r.error);
  return name === undefined
    ? 'Not connected. Connect with `tp connect --docker`.'
    : `There is no session named ${name}. Start it with \`tp connect --docker --name ${name}\`.`;
}

export function renderStatus(
  s: SessionSummary,
  status: SessionStatus | undefined,
  error?: string,
): string {
  if (!s.running) {
    const exit = s.exit;
    return [
      `Session ${s.name}: the daemon container is not running${exit === undefined ? '' : ` (exit code ${exit.code}${exit.oomKilled ? ', killed for memory' : ''}, at ${exit.finishedAt})`}.`,
      `Run \`tp quit --name ${s.name}\` to clean it up, then connect again.`,
    ].join('\n');
  }
  if (status === undefined) {
    return [
      `Session ${s.name}: the daemon container runs but does not answer (${error ?? 'no control API'}).`,
      `End it with \`tp quit --name ${s.name}\`, or replace it by connecting again with --replace.`,
    ].join('\n');
  }
  const t = status.tunnel;
  const rows: [string, string][] = [
    ['Daemon', `${s.name} (running since ${status.startedAt})`],
    [
      'Cluster',
      `context ${status.context}, server ${status.server} (the daemon uses ${status.serverFromDaemon}, via ${status.apiPath})`,
    ],
    ['Namespace', status.namespace],
    ['Networks', `${s.networks.join(', ')} (local containers on them are reached by name)`],
    [
      'Routes',
      `${status.routes.join(', ')} (pods from ${status.subnetSources.pods}, services from ${status.subnetSources.services})`,
    ],
  ];
  if (status.neverProxy.length > 0) rows.push(['Never proxied', status.neverProxy.join(', ')]);
  rows.push([
    'DNS',
    status.dns.enabled
      ? `127.0.0.1 in the daemon's namespace; search ${status.dns.search.join(' ')}; other names to ${status.dns.upstream.join(', ') || '(none)'}`
      : 'off',
  ]);
  rows.push([
    'Manager',
    `${status.manager.namespace}/${status.manager.pod ?? '?'} (version ${status.manager.version})`,
  ]);
  rows.push([
    'Tunnel',
    `${t.state} since ${t.since}; ${t.dials} flows, ${t.failedDials} not connected, ${t.reconnects} reconnects${t.lastError === undefined ? '' : `; last error: ${t.lastError}`}`,
  ]);
  const engaged = status.engagements;
  if (engaged.length === 0) rows.push(['Engagements', 'none']);
  engaged.forEach((e, i) => {
    rows.push([i === 0 ? 'Engagements' : '', `${e.workload} (${e.mode}), since ${e.since}`]);
    for (const line of engagementLines(e)) rows.push(['', `  ${line}`]);
  });
  const recent = t.events
    .filter((e) => e.state !== 'ready' || e.message !== 'connected to tp-manager')
    .slice(-5);
  const lines = [alignRows(rows)];
  if (recent.length > 0) {
    lines.push('Recent tunnel events:');
    for (const e of recent) lines.push(`  ${e.time}  ${e.state}  ${e.message}`);
  }
  return lines.join('\n');
}

/** The detail lines of one engagement in `tp status`. */
export function engagementLines(e: EngagementStatus): string[] {
  const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  const lines = [
    `container ${e.container}; ${plural(e.pods.length, 'pod')}: ${e.pods.join(', ') || '(none)'}`,
  ];
  if (e.ports.length > 0) {
    const ports = e.ports.map(
      (p) =>
        `${p.port}/${p.protocol.toLowerCase()} -> ${p.local}${p.name === undefined ? '' : ` (${p.name})`}`,
    );
    lines.push(
      `ports ${ports.join(', ')}; ${e.accepted} connections, ${e.refused} refused locally`,
    );
  }
  if (e.tap !== undefined) {
    const counts =
      e.mode === 'wiretap'
        ? `${e.taken ?? 0} copied, ${e.dropped ?? 0} dropped`
        : `${e.taken ?? 0} taken`;
    lines.push(`intercepting ${describeFilter(e.tap.filter)} to port ${e.tap.target}; ${counts}`);
  }
  if (e.envFile !== undefined) lines.push(`env file ${e.envFile}`);
  if (e.envJson !== undefined) lines.push(`env JSON ${e.envJson}`);
  for (const m of e.mounts) {
    const how = m.readOnly ? 'read-only' : m.writtenBack ? 'written back' : 'read-write';
    lines.push(`mount ${m.path} -> ${m.volume ?? '(not in Docker)'} (${how})`);
  }
  return lines;
}
