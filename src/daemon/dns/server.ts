import { randomInt } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import type { Server, Socket } from 'node:net';
import { messageOf } from '../../lib/errors.js';
import { debugLogger, type DebugFn } from '../../lib/log.js';
import { isSelf, validate, type DnsServerOptions, type Transport } from './options.js';
import { routeName, renameOwners, type ClusterNames, type NameRoute } from './policy.js';
import { bindUdpAndTcp, serveTcp, type UdpSocket } from './transport.js';
import {
  buildQuery,
  decode,
  errorResponse,
  parseQuery,
  respond,
  truncated,
  withId,
  type Query,
} from './message.js';
import { forward, formatNameserver, parseNameserver, type Nameserver } from './upstream.js';

export type { DnsServerOptions };

/**
 * Counters since start: `queries` that parsed; answered by the `cluster` or an `upstream`;
 * `failures` answered with SERVFAIL (cluster or every upstream failed or was late); `dropped`
 * packets that did not parse as a query. A Record, so it can be reported as one.
 */
export type DnsStats = Record<'queries' | 'cluster' | 'upstream' | 'failures' | 'dropped', number>;

/**
 * The daemon's DNS server on 127.0.0.1:53, which every container joined to the daemon's
 * network namespace uses through the shared /etc/resolv.conf. Which names are the cluster's
 * is decided in policy.ts; everything else goes to the nameservers the container had before,
 * so public names and Docker's own names (127.0.0.11) keep resolving.
 *
 * A query keeps its transport on the way to the cluster: one that came over TCP is asked over
 * TCP, so an answer of any size (a headless service with hundreds of endpoints) reaches the
 * client whole, as it would from the cluster's DNS itself.
 */
export class DnsServer implements AsyncDisposable {
  private readonly counters: DnsStats = {
    queries: 0,
    cluster: 0,
    upstream: 0,
    failures: 0,
    dropped: 0,
  };
  private readonly connections = new Set<Socket>();
  private stopped: Promise<void> | undefined;
  private readonly names: ClusterNames;
  private readonly timeoutMs: number;
  private readonly log: DebugFn;
  private readonly nameservers: readonly Nameserver[];
  /** The upstream nameservers in use, as `address:port`. */
  readonly upstream: readonly string[];

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    readonly host: string,
    readonly port: number,
    private readonly opts: DnsServerOptions,
  ) {
    const known = new Set([opts.namespace]);
    this.names = {
      domain: opts.clusterDomain.toLowerCase().replace(/^\.+|\.+$/g, ''),
      namespace: opts.namespace,
      known: opts.knownNames ?? (() => known),
      ...(opts.isClusterAddress === undefined ? {} : { isClusterAddress: opts.isClusterAddress }),
    };
    this.timeoutMs = opts.timeoutMs ?? 4000;
    this.log = opts.log ?? debugLogger('dns');
    // Forwarding to itself would loop until every query timed out.
    this.nameservers = opts.upstream.map(parseNameserver).filter((ns) => !isSelf(ns, host, port));
    this.upstream = this.nameservers.map(formatNameserver);
    udp.on('message', (msg, peer) => {
      void this.onDatagram(msg, peer);
    });
    udp.on('error', (err) => {
      this.log(`UDP socket: ${err.message}`);
    });
    tcp.on('connection', (socket) => {
      serveTcp(socket, this.connections, (msg) => this.answer(msg, 'tcp'));
    });
  }

  static async start(opts: DnsServerOptions): Promise<DnsServer> {
    validate(opts);
    opts.upstream.forEach(parseNameserver);
    const host = opts.host ?? '127.0.0.1';
    const { udp, tcp, port } = await bindUdpAndTcp(host, opts.port ?? 53);
    return new DnsServer(udp, tcp, host, port, opts);
  }

  stats(): DnsStats {
    return { ...this.counters };
  }

  /** Closes both listeners and every TCP connection; safe to call more than once. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      for (const socket of this.connections) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => {
          this.tcp.close(() => {
            resolve();
          });
        }),
        new Promise<void>((resolve) => this.udp.close(resolve)),
      ]);
    })();
    return this.stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async onDatagram(msg: Buffer, peer: RemoteInfo): Promise<void> {
    const response = await this.answer(msg, 'udp');
    if (response === undefined || this.stopped !== undefined) return;
    this.udp.send(response, peer.port, peer.address, (err) => {
      if (err) this.log(`UDP send to ${peer.address}:${peer.port}: ${err.message}`);
    });
  }

  /** Never rejects: a packet that does not parse is dropped; a query always gets an answer. */
  private async answer(msg: Buffer, transport: Transport): Promise<Buffer | undefined> {
    let query: Query;
    try {
      query = parseQuery(msg);
    } catch (err) {
      this.counters.dropped += 1;
      this.log(`dropped a packet: ${messageOf(err)}`);
      return undefined;
    }
    this.counters.queries += 1;
    try {
      const response = await this.route(msg, query, transport);
      return transport === 'udp' && response.length > query.udpLimit
        ? truncated(query, response)
        : response;
    } catch (err) {
      // A bug, or an answer that parsed once and not twice: SERVFAIL, never a crash.
      this.log(`${query.name}: ${messageOf(err)}`);
      try {
        return this.servFail(query);
      } catch {
        return undefined;
      }
    }
  }

  private async route(msg: Buffer, query: Query, transport: Transport): Promise<Buffer> {
    if (query.opcode !== 'QUERY') return errorResponse(query, 'NOTIMP');
    const deadline = Date.now() + this.timeoutMs;
    const route = this.routeOf(query);
    if (route.to === 'cluster') return this.fromCluster(msg, query, transport);
    if (route.to === 'expand') {
      // Half the budget at most, so the upstream still answers before the client gives up.
      const found = await this.expanded(query, route.candidates, transport, this.timeoutMs / 2);
      if (found !== undefined) return found;
    }
    return this.fromUpstream(msg, query, deadline - Date.now());
  }

  private routeOf(query: Query): NameRoute {
    const route = routeName(query.name, this.names);
    if (route.to !== 'expand') return route;
    return this.opts.expandShortNames === false || query.class !== 'IN'
      ? { to: 'upstream' }
      : route;
  }

  private async fromCluster(msg: Buffer, query: Query, transport: Transport): Promise<Buffer> {
    try {
      const answer = await this.askCluster(msg, transport, this.timeoutMs);
      this.counters.cluster += 1;
      return withId(answer, query.id);
    } catch (err) {
      this.log(`cluster, ${query.name}: ${messageOf(err)}`);
      return this.servFail(query);
    }
  }

  /** Asked together; the first candidate in search-list order that has records wins. */
  private async expanded(
    query: Query,
    candidates: readonly string[],
    transport: Transport,
    budgetMs: number,
  ): Promise<Buffer | undefined> {
    const asked = query.packet.questions?.[0]?.name ?? query.name;
    const found = await Promise.all(
      candidates.map(async (name) => {
        const q = buildQuery({ id: randomInt(0x10000), name, type: query.type, udpSize: 1232 });
        try {
          const answer = decode(await this.askCluster(q, transport, budgetMs));
          if (answer.rcode !== 'NOERROR' || (answer.answers ?? []).length === 0) return undefined;
          // Authority and additional records describe the expanded name's zone: dropped.
          return respond(query, {
            rcode: 'NOERROR',
            aa: answer.flag_aa,
            answers: renameOwners(answer.answers ?? [], name, asked),
          });
        } catch {
          return undefined;
        }
      }),
    );
    const answer = found.find((a) => a !== undefined);
    if (answer !== undefined) this.counters.cluster += 1;
    return answer;
  }

  /** The cluster's answer, or a rejection when it fails, is late or does not parse. */
  private async askCluster(msg: Buffer, transport: Transport, timeoutMs: number): Promise<Buffer> {
    const answer = await withTimeout(
      Promise.resolve().then(() => this.opts.cluster(msg, transport)),
      timeoutMs,
    );
    if (!decode(answer).flag_qr) throw new Error('the cluster sent back a query, not an answer');
    return answer;
  }

  private async fromUpstream(msg: Buffer, query: Query, budgetMs: number): Promise<Buffer> {
    try {
      const answer = await forward(this.nameservers, msg, Math.max(1, budgetMs));
      this.counters.upstream += 1;
      return answer;
    } catch (err) {
      this.log(`upstream, ${query.name}: ${messageOf(err)}`);
      return this.servFail(query);
    }
  }

  private servFail(query: Query): Buffer {
    this.counters.failures += 1;
    return errorResponse(query, 'SERVFAIL');
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no answer within ${Math.round(ms)} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
