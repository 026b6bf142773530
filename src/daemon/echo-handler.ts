import type { Socket } from 'node:net';
import type { Answer, DatagramFlow, FlowHandler } from '../netstack/flow-server.js';

export interface EchoHandlerOptions {
  /** Ports whose flows are echoed back (TCP bytes, UDP datagrams). */
  echo: ReadonlySet<number>;
  /** Ports whose flows are refused: a TCP RST at once. Every other port is unreachable. */
  refuse: ReadonlySet<number>;
}

/**
 * A flow handler that needs no cluster: it echoes, refuses or calls unreachable by port. The
 * daemon's `selftest` mode runs it, so the network stack can be tested and benchmarked with
 * Docker alone.
 */
export function echoHandler(opts: EchoHandlerOptions): FlowHandler {
  const decide = <T>(port: number, accept: (flow: T) => void): Answer<T> =>
    opts.echo.has(port) ? accept : opts.refuse.has(port) ? 'refused' : 'unreachable';
  return {
    tcp: (h) =>
      decide<Socket>(h.dst.port, (socket) => {
        // pipe() ends the write side when the read side ends: half-close travels back.
        socket.pipe(socket);
      }),
    udp: (h) =>
      decide<DatagramFlow>(h.dst.port, (flow) => {
        flow.on('datagram', (d) => flow.send(d));
      }),
  };
}
