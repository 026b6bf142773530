/**
 * The program inside the daemon container.
 *   run               report versions and stay up (the session arrives with `tp connect`)
 *   probe [name]      check NET_ADMIN and /dev/net/tun by creating a TUN device, and exit
 *   selftest [flags]  the network stack with an echo handler (docker tier, benchmarks)
 *   forward TARGET PORT/PROTO...  relay published ports to TARGET (src/docker/publish.ts)
 *   sync CONFIG       send local writes in a replace's mounts to the pod (writeback/sync.ts)
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { clientVersion } from '../lib/package-info.js';
import { loadNetstack, type NetstackLibrary } from '../netstack/library.js';
import { parseForwardArgs, startForwarder } from './forward.js';
import { selftest } from './selftest.js';
import { runSession } from './session.js';
import { parseSyncConfig, startSync } from './writeback/sync.js';
import { SESSION_CONFIG_PATH } from '../contract/session.js';

const log = (o: object): void => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...o }));
};
const libraryPath = process.env.TP_NETSTACK_LIB;
// Loaded by the roles that use it: the forwarder has no use for a Go runtime.
const stack = (): NetstackLibrary =>
  loadNetstack(libraryPath === undefined || libraryPath === '' ? undefined : libraryPath);
const [mode = 'run', ...rest] = process.argv.slice(2);

if (mode === 'forward') {
  const forwarder = await startForwarder(parseForwardArgs(rest));
  log({ msg: 'forwarding', ports: forwarder.bound });
  // PID 1 gets no default handler for these: without one, `docker stop` waits out its timeout.
  const onSignal = (): void => {
    void forwarder.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
} else if (mode === 'sync') {
  const syncer = await startSync({
    ...parseSyncConfig(rest[0] ?? ''),
    secret: process.env.TP_CONTROL_SECRET ?? '',
    log,
  });
  // `docker stop` is how tp ends it: what the container wrote last still reaches the pod.
  const onSignal = (): void => {
    void syncer.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
} else if (mode === 'probe') {
  const result = stack().probeTun(rest[0] ?? 'tpprobe0');
  console.log(JSON.stringify(result));
  process.exitCode = result.ok ? 0 : 1;
} else if (mode === 'selftest') {
  const { values } = parseArgs({
    args: rest,
    options: {
      route: { type: 'string', multiple: true, default: ['198.18.0.0/16'] },
      echo: { type: 'string', default: '7,9000' },
      refuse: { type: 'string', default: '8' },
      // TCP ports that echo but reset each flow where the echo would end it (none by default).
      reset: { type: 'string', default: '' },
      socket: { type: 'string', default: '/run/tp/flows.sock' },
      'udp-idle-ms': { type: 'string', default: '60000' },
      'loopback-echo': { type: 'string' },
      // The TUN carries only this namespace's own traffic, so a large MTU costs nothing and
      // saves per-packet work: 1500 is several times slower (netstack/README.md).
      mtu: { type: 'string', default: '9000' },
    },
  });
  const ports = (s: string): number[] =>
    s
      .split(',')
      .filter((p) => p !== '')
      .map(Number);
  await selftest(
    stack(),
    {
      routes: values.route,
      echo: ports(values.echo),
      refuse: ports(values.refuse),
      reset: ports(values.reset),
      socketPath: values.socket,
      udpIdleTimeoutMs: Number(values['udp-idle-ms']),
      mtu: Number(values.mtu),
      ...(values['loopback-echo'] === undefined
        ? {}
        : { loopbackEcho: Number(values['loopback-echo']) }),
    },
    log,
  );
} else if (mode === 'run') {
  const netstack = stack();
  log({ msg: 'tp daemon started', version: clientVersion(), netstack: netstack.version() });
  if (existsSync(SESSION_CONFIG_PATH)) {
    try {
      const session = await runSession(netstack, log);
      const onSignal = (signal: string): void => {
        log({ msg: 'tp daemon stopping', signal });
        void session.stop();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      await session.ended;
      log({ msg: 'session ended' });
      // Flows and timers may still hold the loop; the session is over, so is the process.
      process.exit(0);
    } catch (err) {
      log({ msg: 'session failed', error: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    }
  } else {
    // Without a session (e.g. `tp doctor`), stay up until stopped.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    process.once('SIGTERM', () => {
      clearInterval(keepAlive);
    });
    process.once('SIGINT', () => {
      clearInterval(keepAlive);
    });
  }
} else {
  console.error(`unknown mode ${mode}: use run, probe [name], selftest, forward or sync`);
  process.exitCode = 2;
}
