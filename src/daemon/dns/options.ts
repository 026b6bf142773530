import { networkInterfaces } from 'node:os';
import { TpError } from '../../lib/errors.js';
import type { DebugFn } from '../../lib/log.js';
import type { Nameserver } from './upstream.js';

/** How a query reached tp, and so how it is asked of the cluster. */
export type Transport = 'udp' | 'tcp';

export interface DnsServerOptions {
  /** Default 127.0.0.1: the address /etc/resolv.conf names. */
  host?: string;
  /** Default 53; 0 picks a free port (the same one for UDP and TCP), read back from `.port`. */
  port?: number;
  /** e.g. `cluster.local`. */
  clusterDomain: string;
  /** The connected namespace: single-label names are looked up in it. */
  namespace: string;
  /** The cluster's namespaces and the namespace's services (policy.ts); default: `namespace`. */
  knownNames?: () => ReadonlySet<string>;
  /** Exchanges one DNS message with the cluster's DNS, through the tunnel, over `transport`. */
  cluster: (query: Buffer, transport: Transport) => Promise<Buffer>;
  /** The nameservers the container had before, `ip` or `ip:port`; tp's own address is skipped. */
  upstream: readonly string[];
  /** True when the address is in a range routed to the cluster: its reverse name is the cluster's. */
  isClusterAddress?: (ip: string) => boolean;
  /** Look up short names in the cluster first (see policy.ts). Default true. */
  expandShortNames?: boolean;
  /** How long a query may take before the client gets SERVFAIL. Default 4000. */
  timeoutMs?: number;
  log?: DebugFn;
}

/** True when forwarding to `ns` would reach this very server, and loop. */
export function isSelf(ns: Nameserver, host: string, port: number): boolean {
  if (ns.port !== port) return false;
  if (ns.address === host) return true;
  if (host !== '0.0.0.0' && host !== '::') return false;
  const local = Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).map((i) => i.address),
  );
  return ns.address.startsWith('127.') || local.includes(ns.address);
}

const LABEL = /^[a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?$/;

/** Rejects options no daemon should start with, naming what was wrong. */
export function validate(opts: DnsServerOptions): void {
  const bad = (what: string): TpError =>
    new TpError('config', `DNS server: ${what}`, {
      code: 'DNS_CONFIG',
      fix: 'Check the cluster domain and namespace tp was started with (tp connect --namespace).',
    });
  const domain = opts.clusterDomain.toLowerCase().replace(/^\.+|\.+$/g, '');
  if (domain === '') throw bad('the cluster domain is empty');
  if (domain.length > 253 || !domain.split('.').every((l) => LABEL.test(l))) {
    throw bad(`"${opts.clusterDomain}" is not a DNS domain`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(opts.namespace)) {
    throw bad(`"${opts.namespace}" is not a namespace name`);
  }
  const timeout = opts.timeoutMs ?? 4000;
  if (!Number.isFinite(timeout) || timeout <= 0) throw bad(`timeout ${timeout} ms is not positive`);
}
