/**
 * Cluster DNS for the daemon's network namespace: tp's DNS server on 127.0.0.1:53 and a
 * resolv.conf that points at it, with the connected namespace's search list. Names the
 * cluster does not know go to the nameservers the container had before, so Docker's own names
 * (127.0.0.11 on user networks) keep working.
 */
import { readFileSync } from 'node:fs';
import { contains } from '../lib/cidr.js';
import { DnsServer, type DnsServerOptions } from './dns/server.js';
import type { SessionStatus } from '../contract/session.js';
import {
  parseResolvConf,
  rewriteResolvConf,
  upstreamNameservers,
  writeInPlace,
} from './dns/resolv-conf.js';

const RESOLV_CONF = '/etc/resolv.conf';

export interface SessionDns {
  status(): SessionStatus['dns'];
  stop(): Promise<void>;
}

export async function startSessionDns(opts: {
  namespace: string;
  clusterDomain: string;
  exchange: DnsServerOptions['cluster'];
  knownNames: () => ReadonlySet<string>;
  /** The routed ranges less the never-proxied ones: their reverse names are the cluster's. */
  routes: readonly string[];
  neverProxy: readonly string[];
  resolvConf?: string;
}): Promise<SessionDns> {
  const path = opts.resolvConf ?? RESOLV_CONF;
  const original = readFileSync(path, 'utf8');
  const upstream = upstreamNameservers(parseResolvConf(original)).filter(
    (ns) => ns !== '127.0.0.1',
  );
  const server = await DnsServer.start({
    host: '127.0.0.1',
    port: 53,
    clusterDomain: opts.clusterDomain,
    namespace: opts.namespace,
    cluster: opts.exchange,
    knownNames: opts.knownNames,
    isClusterAddress: (ip) =>
      opts.routes.some((r) => contains(r, ip)) && !opts.neverProxy.some((r) => contains(r, ip)),
    upstream,
  });
  const search = [
    `${opts.namespace}.svc.${opts.clusterDomain}`,
    `svc.${opts.clusterDomain}`,
    opts.clusterDomain,
  ];
  await writeInPlace(
    path,
    rewriteResolvConf(original, { nameserver: '127.0.0.1', search, ndots: 5 }),
  );
  let stopped: Promise<void> | undefined;
  return {
    status: () => ({
      enabled: true as const,
      nameserver: '127.0.0.1',
      search,
      clusterDomain: opts.clusterDomain,
      upstream,
      stats: server.stats(),
    }),
    stop: () =>
      (stopped ??= (async () => {
        // Joined containers outlive a quit only briefly, but they should not lose DNS.
        await writeInPlace(path, original).catch(() => undefined);
        await server.stop();
      })()),
  };
}
