/**
 * The agent's request and reply lines (docs/engagements.md), checked as strictly as the
 * tunnel's: the agent answers whatever reaches its port, the daemon reads replies from a pod
 * whose image a user may have changed, and the config arrives through a pod spec.
 */
import {
  relativeMountPath,
  type AgentConfig,
  type AgentInfo,
  type AgentPort,
  type AgentReply,
  type AgentRequest,
  type MountRoot,
  type ProxyPort,
  type Tap,
  type TapStats,
  type Protocol,
  type TarReply,
} from '../contract/agent.js';
import { parseHttpFilter } from '../contract/http-filter.js';

/** An `info` reply carries the whole environment, which a ConfigMap can make large. */
export const AGENT_MAX_REPLY = 4 * 1024 * 1024;

type Fields = Record<string, unknown>;

function object(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what} is not an object`);
  }
  return value as Fields;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}

function string(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} is not a string`);
  return value;
}

function absolutePath(value: unknown, what: string): string {
  const path = string(value, what);
  if (!path.startsWith('/') || path.includes('\0'))
    throw new Error(`${what} is not an absolute path`);
  return path;
}

function port(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${what} is not a port: ${String(value)}`);
  }
  return value;
}

function protocol(value: unknown, what: string): Protocol {
  if (value !== 'TCP' && value !== 'UDP') throw new Error(`${what} is not TCP or UDP`);
  return value;
}

function agentPort(value: unknown, what: string): AgentPort {
  const o = object(value, what);
  const p: AgentPort = { port: port(o.port, `${what}.port`), protocol: protocol(o.protocol, what) };
  if (o.name !== undefined) p.name = string(o.name, `${what}.name`);
  return p;
}

function mounts(value: unknown, what: string): AgentConfig['mounts'] {
  return array(value, what).map((m, i) => {
    const o = object(m, `${what}[${i}]`);
    if (typeof o.readOnly !== 'boolean') throw new Error(`${what}[${i}].readOnly is not a boolean`);
    return { path: absolutePath(o.path, `${what}[${i}].path`), readOnly: o.readOnly };
  });
}

export function parseAgentRequest(line: string): AgentRequest {
  const o = object(JSON.parse(line), 'the request');
  if (o.op === 'info') return { op: 'info' };
  if (o.op === 'accept') {
    return o.session === undefined
      ? { op: 'accept' }
      : { op: 'accept', session: sessionName(o.session, 'session') };
  }
  if (o.op === 'tap') return { op: 'tap', ...tap(o) };
  if (o.op === 'tar') return { op: 'tar', path: absolutePath(o.path, 'path') };
  if (o.op === 'write') {
    return {
      op: 'write',
      path: absolutePath(o.path, 'path'),
      deletes: array(o.deletes, 'deletes').map((d, i) => relativeMountPath(d, `deletes[${i}]`)),
    };
  }
  throw new Error(`unknown op ${String(o.op)}`);
}

function sessionName(value: unknown, what: string): string {
  const s = string(value, what);
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(s)) throw new Error(`${what} is not a name`);
  return s;
}

function tap(o: Fields): Tap {
  if (o.mode !== 'intercept' && o.mode !== 'wiretap')
    throw new Error('mode is not intercept or wiretap');
  const t: Tap = {
    session: sessionName(o.session, 'session'),
    mode: o.mode,
    target: port(o.target, 'target'),
  };
  if (o.filter !== undefined) t.filter = parseHttpFilter(o.filter, 'filter');
  return t;
}

function proxyPort(value: unknown, what: string): ProxyPort {
  const o = object(value, what);
  const p: ProxyPort = {
    listen: port(o.listen, `${what}.listen`),
    target: port(o.target, `${what}.target`),
  };
  if (o.appProtocol !== undefined) p.appProtocol = string(o.appProtocol, `${what}.appProtocol`);
  return p;
}

function info(value: unknown): AgentInfo {
  const o = object(value, 'info');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(object(o.env, 'info.env'))) env[k] = string(v, `env ${k}`);
  return {
    version: string(o.version, 'info.version'),
    container: string(o.container, 'info.container'),
    env,
    mounts: mounts(o.mounts, 'info.mounts'),
    ports: array(o.ports, 'info.ports').map((p, i) => agentPort(p, `info.ports[${i}]`)),
  };
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what} is not a count: ${String(value)}`);
  }
  return value;
}

function mountRoot(value: unknown): MountRoot {
  const o = object(value, 'root');
  if (typeof o.file !== 'boolean') throw new Error('root.file is not a boolean');
  return {
    file: o.file,
    mode: count(o.mode, 'root.mode') & 0o7777,
    uid: count(o.uid, 'root.uid'),
    gid: count(o.gid, 'root.gid'),
  };
}

function tarReply(o: Fields): TarReply {
  const out: TarReply = {};
  if (o.skipped !== undefined)
    out.skipped = array(o.skipped, 'skipped').map((s) => string(s, 'skipped'));
  if (o.size !== undefined) out.size = count(o.size, 'size');
  if (o.root !== undefined) out.root = mountRoot(o.root);
  return out;
}

export function parseAgentReply(line: string): AgentReply {
  const o = object(JSON.parse(line), 'the reply');
  if (o.ok === false) return { ok: false, error: string(o.error, 'error') };
  if (o.ok !== true) throw new Error('the reply has no ok');
  if (o.info !== undefined) return { ok: true, info: info(o.info) };
  if (o.tar === true) return { ok: true, tar: true, ...tarReply(o) };
  if (o.written !== undefined) {
    const w = object(o.written, 'written');
    return {
      ok: true,
      written: {
        files: count(w.files, 'written.files'),
        bytes: count(w.bytes, 'written.bytes'),
        deleted: count(w.deleted, 'written.deleted'),
      },
    };
  }
  if (o.tapped === true) return { ok: true, tapped: true };
  if (o.tapStats !== undefined) {
    const t = object(o.tapStats, 'tapStats');
    const stats: TapStats = {
      taken: count(t.taken, 'tapStats.taken'),
      dropped: count(t.dropped, 'tapStats.dropped'),
    };
    return { ok: true, tapStats: stats };
  }
  if (o.conn !== undefined) {
    const c = object(o.conn, 'conn');
    return {
      ok: true,
      conn: {
        port: port(c.port, 'conn.port'),
        protocol: protocol(c.protocol, 'conn.protocol'),
        src: string(c.src, 'conn.src'),
      },
    };
  }
  throw new Error('the reply is neither info, tar, written, tapped, tapStats nor conn');
}

/** The agent role's argument, written by tp into the pod spec. */
export function parseAgentConfig(json: string): AgentConfig {
  const o = object(JSON.parse(json), 'the agent config');
  const ports = array(o.ports, 'ports').map((p, i) => agentPort(p, `ports[${i}]`));
  const seen = new Set<string>();
  for (const p of ports) {
    const key = `${p.port}/${p.protocol}`;
    if (seen.has(key)) throw new Error(`port ${key} is listed twice`);
    seen.add(key);
  }
  return {
    container: string(o.container, 'container'),
    ports,
    mounts: mounts(o.mounts, 'mounts'),
    ownEnv: array(o.ownEnv, 'ownEnv').map((n) => string(n, 'ownEnv')),
    ...(o.proxies === undefined
      ? {}
      : { proxies: array(o.proxies, 'proxies').map((p, i) => proxyPort(p, `proxies[${i}]`)) }),
  };
}
