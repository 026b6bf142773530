/**
 * Decides each flow the netstack hands over: a stream to tp-manager, which dials the real
 * destination, or the manager's answer as a verdict (refused → RST, anything else → ICMP
 * unreachable) so that clients fail as fast as they would in the cluster.
 */
import type { Socket } from 'node:net';
import { contains } from '../lib/cidr.js';
import type { Answer, DatagramFlow, FlowHandler } from '../netstack/flow-server.js';
import type { FlowHeader } from '../netstack/header.js';
import { DatagramTunnel, spliceStream } from '../tunnel/frames.js';
import type { TunnelPool } from './tunnel-pool.js';

export interface RouterStats {
  tcp: number;
  udp: number;
  refused: number;
  unreachable: number;
  neverProxied: number;
  tunnelLost: number;
}

export class Router implements FlowHandler {
  readonly stats: RouterStats = {
    tcp: 0,
    udp: 0,
    refused: 0,
    unreachable: 0,
    neverProxied: 0,
    tunnelLost: 0,
  };

  constructor(
    private readonly pool: TunnelPool,
    private readonly neverProxy: readonly string[],
    private readonly log: (o: object) => void = () => undefined,
  ) {}

  /** Resets a flow in the netstack (a RST to the client); set once the stack runs. */
  resetFlow: (flowId: bigint) => void = () => undefined;

  private excluded(h: FlowHeader): boolean {
    if (this.neverProxy.some((c) => contains(c, h.dst.address))) {
      this.stats.neverProxied += 1;
      return true;
    }
    return false;
  }

  async tcp(h: FlowHeader): Promise<Answer<Socket>> {
    if (this.excluded(h)) return 'unreachable';
    const r = await this.pool.dial('tcp', h.dst.address, h.dst.port);
    if (!r.ok) return this.failed(h, r.error, r.message);
    this.stats.tcp += 1;
    return (socket) => {
      void spliceStream(socket, r.stream, () => {
        this.resetFlow(h.flowId);
      }).then((how) => {
        if (how === 'tunnel-lost') this.stats.tunnelLost += 1;
      });
    };
  }

  async udp(h: FlowHeader): Promise<Answer<DatagramFlow>> {
    if (this.excluded(h)) return 'unreachable';
    const r = await this.pool.dial('udp', h.dst.address, h.dst.port);
    if (!r.ok) return this.failed(h, r.error, r.message);
    this.stats.udp += 1;
    return (flow) => {
      const tunnel = new DatagramTunnel(r.stream);
      flow.on('datagram', (d) => tunnel.send(d));
      tunnel.on('datagram', (d) => flow.send(d));
      flow.once('close', () => {
        tunnel.close();
      });
      tunnel.once('close', () => {
        flow.close();
      });
    };
  }

  private failed(h: FlowHeader, error: string, message: string): 'refused' | 'unreachable' {
    const verdict = error === 'refused' ? 'refused' : 'unreachable';
    this.stats[verdict] += 1;
    this.log({
      msg: 'flow not connected',
      proto: h.proto,
      dst: `${h.dst.address}:${h.dst.port}`,
      error,
      detail: message,
    });
    return verdict;
  }
}
