/**
 * Exchanges DNS messages with the cluster's DNS server through the tunnel. One UDP association
 * to the cluster's nameserver carries every UDP query (one stream instead of one per query);
 * queries get ids unique among those in flight, so answers cannot be mixed up. A query that
 * reached tp over TCP goes over TCP, on a tunnel stream of its own (the pool has it open
 * already), so the cluster's answer is never cut to a UDP size.
 */
import { DatagramTunnel, FramedStream } from '../tunnel/frames.js';
import type { Transport } from './dns/options.js';
import { exchangeOverStream } from './dns/upstream.js';
import type { TunnelPool } from './tunnel-pool.js';

interface Pending {
  originalId: number;
  resolve(msg: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class ClusterDns {
  private tunnel: Promise<DatagramTunnel> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = Math.floor(Math.random() * 0xffff);

  constructor(
    private readonly pool: TunnelPool,
    private readonly nameserver: string,
    private readonly timeoutMs = 3000,
  ) {}

  readonly exchange = async (query: Buffer, transport: Transport = 'udp'): Promise<Buffer> => {
    if (query.length < 12) throw new Error('short DNS message');
    if (transport === 'tcp') return this.exchangeTcp(query);
    const tunnel = await this.connect();
    const id = this.freeId();
    const wire = Buffer.from(query);
    wire.writeUInt16BE(id, 0);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer from the cluster's DNS within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { originalId: query.readUInt16BE(0), resolve, reject, timer });
      tunnel.send(wire);
    });
  };

  private async exchangeTcp(query: Buffer): Promise<Buffer> {
    const r = await this.pool.dial('tcp', this.nameserver, 53);
    if (!r.ok) {
      throw new Error(`cannot reach the cluster's DNS at ${this.nameserver}: ${r.message}`);
    }
    return exchangeOverStream(new FramedStream(r.stream), query, this.timeoutMs);
  }

  close(): void {
    void this.tunnel
      ?.then((t) => {
        t.close();
      })
      .catch(() => undefined);
    this.tunnel = undefined;
  }

  private freeId(): number {
    for (;;) {
      this.nextId = (this.nextId + 1) & 0xffff;
      if (!this.pending.has(this.nextId)) return this.nextId;
    }
  }

  private connect(): Promise<DatagramTunnel> {
    this.tunnel ??= this.pool.dial('udp', this.nameserver, 53).then((r) => {
      if (!r.ok) {
        this.tunnel = undefined;
        throw new Error(`cannot reach the cluster's DNS at ${this.nameserver}: ${r.message}`);
      }
      const t = new DatagramTunnel(r.stream);
      t.on('datagram', (msg) => {
        if (msg.length < 12) return;
        const p = this.pending.get(msg.readUInt16BE(0));
        if (p === undefined) return;
        this.pending.delete(msg.readUInt16BE(0));
        clearTimeout(p.timer);
        const answer = Buffer.from(msg);
        answer.writeUInt16BE(p.originalId, 0);
        p.resolve(answer);
      });
      t.once('close', () => {
        this.tunnel = undefined;
      });
      return t;
    });
    return this.tunnel;
  }
}
