import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { FlowServer } from '../netstack/flow-server.js';
import type { NetstackLibrary } from '../netstack/library.js';
import { RunningNetstack } from '../netstack/stack.js';
import { echoHandler } from './echo-handler.js';

export interface SelftestOptions {
  routes: string[];
  echo: number[];
  refuse: number[];
  /** TCP ports that echo like `echo` but end each flow with a reset (RST) instead of a FIN. */
  reset: number[];
  socketPath: string;
  udpIdleTimeoutMs: number;
  mtu: number;
  /** A plain TCP echo server on 127.0.0.1 at this port: the benchmarks' baseline. */
  loopbackEcho?: number;
}

/**
 * The daemon's `selftest` mode: the real network stack with the echo handler, for the docker
 * tier and the benchmarks. SIGUSR2 stops the stack but keeps the container (and so its network
 * namespace) alive, to show that nothing stays routed; SIGTERM ends it all.
 */
export async function selftest(
  lib: NetstackLibrary,
  opts: SelftestOptions,
  log: (o: object) => void,
): Promise<void> {
  mkdirSync(dirname(opts.socketPath), { recursive: true });
  // The flow server listens before the stack starts (the stack dials it for every flow), so
  // the reset reaches the stack through this late binding.
  let resetFlow = (_flowId: bigint): boolean => false;
  const flows = await FlowServer.listen(
    opts.socketPath,
    echoHandler({
      echo: new Set(opts.echo),
      refuse: new Set(opts.refuse),
      reset: new Set(opts.reset),
      resetFlow: (flowId) => {
        log({ msg: 'flow reset', flowId: String(flowId), reset: resetFlow(flowId) });
      },
    }),
  );
  const stack = RunningNetstack.start(lib, {
    tunName: 'tp0',
    mtu: opts.mtu,
    routes: opts.routes,
    socketPath: opts.socketPath,
    udpIdleTimeoutMs: opts.udpIdleTimeoutMs,
  });
  resetFlow = (flowId) => stack.resetFlow(flowId);
  const baseline = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  if (opts.loopbackEcho !== undefined) baseline.listen(opts.loopbackEcho, '127.0.0.1');
  log({
    msg: 'selftest ready',
    routes: opts.routes,
    echo: opts.echo,
    refuse: opts.refuse,
    reset: opts.reset,
  });
  const statsTimer = setInterval(() => {
    if (stack.running) log({ msg: 'stats', stack: stack.stats(), flows: flows.stats });
  }, 5000);
  process.on('SIGUSR2', () => {
    if (!stack.running) return;
    const final = stack.stats();
    void stack.stop().then(() => {
      log({ msg: 'stack stopped', stack: final });
    });
  });
  await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  clearInterval(statsTimer);
  await stack.stop();
  await flows.stop();
  baseline.close();
  log({ msg: 'selftest stopped' });
}
