import type { Socket } from 'node:net';
import type { Answer, DatagramFlow, FlowHandler } from '../netstack/flow-server.js';

export interface EchoHandlerOptions {
  /** Ports whose flows are echoed back (TCP bytes, UDP datagrams). */
  echo: ReadonlySet<number>;
  /** Ports whose flows are refused: a TCP RST at once. Every other port is unreachable. */
  refuse: ReadonlySet<number>;
  /**
   * Ports whose TCP flows are echoed but end with a reset through `resetFlow` where the echo
   * would half-close (after the client's FIN), as when the daemon's tunnel dies before the
   * answer is complete; UDP on them is echoed.
   */
  reset?: ReadonlySet<number>;
  /** Resets a flow by its header's id (RunningNetstack.resetFlow); needed with `reset`. */
  resetFlow?: (flowId: bigint) => void;
}

/**
 * A flow handler that needs no cluster: it echoes, refuses, resets or calls unreachable by
 * port. The daemon's `selftest` mode runs it, so the network stack can be tested and
 * benchmarked with Docker alone.
 */
export function echoHandler(opts: EchoHandlerOptions): FlowHandler {
  const resets = opts.reset ?? new Set<number>();
  const accepts = (port: number): boolean => opts.echo.has(port) || resets.has(port);
  const decide = <T>(port: number, accept: (flow: T) => void): Answer<T> =>
    accepts(port) ? accept : opts.refuse.has(port) ? 'refused' : 'unreachable';
  return {
    tcp: (h) =>
      decide<Socket>(h.dst.port, (socket) => {
        if (!resets.has(h.dst.port)) {
          // pipe() ends the write side when the read side ends: half-close travels back.
          socket.pipe(socket);
          return;
        }
        // Everything that arrives has been read by then, so closing this socket would reach
        // the client as a clean end: only the reset tells it the answer is cut short. The
        // client has read the whole echo before its FIN, so the RST finds nothing unread
        // there (Node clients report a RST that arrives with unread data as a plain end).
        socket.pipe(socket, { end: false });
        socket.once('end', () => {
          opts.resetFlow?.(h.flowId);
          socket.destroy();
        });
      }),
    udp: (h) =>
      decide<DatagramFlow>(h.dst.port, (flow) => {
        flow.on('datagram', (d) => flow.send(d));
      }),
  };
}
