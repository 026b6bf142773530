import { randomInt } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import type { Server, Socket } from 'node:net';
import { messageOf } from '../../lib/errors.js';
import { debugLogger, type DebugFn } from '../../lib/log.js';
import { answerForShortName, shortNameCandidates } from './expand.js';
import { isSelf, validate, type DnsServerOptions } from './options.js';
import { bindUdpAndTcp, serveTcp, type UdpSocket } from './transport.js';
import {
  CLASS_IN,
  Rcode,
  buildQuery,
  errorResponse,
  readHeader,
  readQuestion,
  truncateResponse,
  udpPayloadLimit,
  withId,
  type Question,
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
 * network namespace uses through the shared /etc/resolv.conf.
 *
 * Routing: a name is the cluster's when it is the cluster domain or under it, or when it is a
 * reverse name that `clusterReverse` claims. Everything else goes to the nameservers the
 * container had before, so public names and Docker's own names (127.0.0.11) keep resolving.
 * Users type `svc`, `svc.ns`, `svc.ns.svc` or `store-0.store`, not full names: the search list
 * tp writes into resolv.conf (`<ns>.svc.<domain> svc.<domain> <domain>`, with ndots:5) makes
 * the stub resolver try the full cluster names first, so those reach this server already under
 * the cluster domain. Only clients that skip the search list send the short name itself; for
 * those, `expandShortNames` tries the cluster before the upstream.
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
  private readonly domain: string;
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
    this.domain = opts.clusterDomain.toLowerCase().replace(/^\.+|\.+$/g, '');
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
      serveTcp(socket, this.connections, (msg) => this.answer(msg, false));
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
    const response = await this.answer(msg, true);
    if (response === undefined || this.stopped !== undefined) return;
    this.udp.send(response, peer.port, peer.address, (err) => {
      if (err) this.log(`UDP send to ${peer.address}:${peer.port}: ${err.message}`);
    });
  }

  /** Never rejects: a packet that does not parse is dropped; a query always gets an answer. */
  private async answer(query: Buffer, udp: boolean): Promise<Buffer | undefined> {
    let question: Question;
    try {
      question = readQuestion(query);
      if (readHeader(query).qr) throw new Error('a response, not a query');
    } catch (err) {
      this.counters.dropped += 1;
      this.log(`dropped a packet: ${messageOf(err)}`);
      return undefined;
    }
    this.counters.queries += 1;
    try {
      const response = await this.route(query, question);
      return udp && response.length > udpPayloadLimit(query)
        ? truncateResponse(response)
        : response;
    } catch (err) {
      // A bug, or an answer that parsed once and not twice: SERVFAIL, never a crash.
      this.log(`${question.name}: ${messageOf(err)}`);
      try {
        return this.servFail(query);
      } catch {
        return undefined;
      }
    }
  }

  private async route(query: Buffer, question: Question): Promise<Buffer> {
    if (readHeader(query).opcode !== 0) return errorResponse(query, Rcode.notImp);
    const deadline = Date.now() + this.timeoutMs;
    if (this.isClusterName(question.name)) return this.fromCluster(query, question);
    if (this.opts.expandShortNames !== false && question.class === CLASS_IN) {
      // Half the budget at most, so the upstream still answers before the client gives up.
      const found = await this.shortName(query, question, this.timeoutMs / 2);
      if (found !== undefined) return found;
    }
    return this.fromUpstream(query, question, deadline - Date.now());
  }

  private isClusterName(name: string): boolean {
    if (name === this.domain || name.endsWith(`.${this.domain}`)) return true;
    if (!/(^|\.)(in-addr|ip6)\.arpa$/.test(name) || this.opts.clusterReverse === undefined) {
      return false;
    }
    try {
      return this.opts.clusterReverse(name);
    } catch {
      return false;
    }
  }

  private async fromCluster(query: Buffer, question: Question): Promise<Buffer> {
    try {
      const answer = await this.askCluster(query, this.timeoutMs);
      this.counters.cluster += 1;
      return withId(answer, readHeader(query).id);
    } catch (err) {
      this.log(`cluster, ${question.name}: ${messageOf(err)}`);
      return this.servFail(query);
    }
  }

  private async shortName(
    query: Buffer,
    question: Question,
    budgetMs: number,
  ): Promise<Buffer | undefined> {
    const candidates = shortNameCandidates(question, this.opts.namespace, this.domain);
    // Asked together; the first candidate in search-list order that has records wins.
    const found = await Promise.all(
      candidates.map(async (name) => {
        const id = randomInt(0x10000);
        const q = buildQuery({ id, name, type: question.type, udpSize: 1232 });
        try {
          return answerForShortName(query, name, await this.askCluster(q, budgetMs));
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
  private async askCluster(query: Buffer, timeoutMs: number): Promise<Buffer> {
    const answer = await withTimeout(
      Promise.resolve().then(() => this.opts.cluster(query)),
      timeoutMs,
    );
    if (!readHeader(answer).qr) throw new Error('the cluster sent back a query, not an answer');
    readQuestion(answer);
    return answer;
  }

  private async fromUpstream(query: Buffer, question: Question, budgetMs: number): Promise<Buffer> {
    try {
      const answer = await forward(this.nameservers, query, Math.max(1, budgetMs));
      this.counters.upstream += 1;
      return answer;
    } catch (err) {
      this.log(`upstream, ${question.name}: ${messageOf(err)}`);
      return this.servFail(query);
    }
  }

  private servFail(query: Buffer): Buffer {
    this.counters.failures += 1;
    return errorResponse(query, Rcode.servFail);
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
