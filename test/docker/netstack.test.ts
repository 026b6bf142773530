import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import type { RunningContainer } from '../../src/docker/engine.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { daemonImageRef, engine, testLabels, testSession } from '../helpers/docker.js';
import { samplesImage } from '../helpers/lab.js';

const client = readFileSync(new URL('../fixtures/flow-client.cjs', import.meta.url), 'utf8');
const bindingsCheck = readFileSync(
  new URL('../fixtures/bindings-check.mjs', import.meta.url),
  'utf8',
);

// Addresses inside the routed ranges; nothing listens there: the stack answers for them all.
const podAddr = '198.18.0.10';
const svcAddr = '198.18.128.10';

interface Fixture {
  daemon: RunningContainer;
  session: string;
  /** Runs the flow client in a container joined to the daemon's network namespace. */
  run: (args: string[]) => Promise<Record<string, unknown>>;
  /** Runs any command in a container joined to the daemon's network namespace. */
  joined: (
    image: string,
    cmd: string[],
    entrypoint?: string[],
  ) => Promise<{ exitCode: number; stdout: string }>;
}

/**
 * Owns a daemon container running the network stack with the echo handler (echo on 7 and
 * 9000, reset 10 where its echo would end, refuse 8, anything else unreachable), with only
 * NET_ADMIN and /dev/net/tun.
 */
const withStack = test.macro(
  async (t: ExecutionContext, body: (t: ExecutionContext, f: Fixture) => Promise<void>) => {
    const session = testSession();
    const image = await daemonImageRef();
    const daemon = await engine.startContainer({
      image,
      name: `tp-${session}`,
      cmd: [
        'selftest',
        '--route',
        '198.18.0.0/17',
        '--route',
        '198.18.128.0/17',
        '--echo',
        '7,9000',
        '--refuse',
        '8',
        '--reset',
        '10',
        '--udp-idle-ms',
        '3000',
      ],
      labels: testLabels(session),
      capAdd: ['NET_ADMIN'],
      devices: ['/dev/net/tun'],
    });
    try {
      await daemon.waitForLog(/selftest ready/);
      const joined: Fixture['joined'] = async (img, cmd, entrypoint) => {
        const spec = {
          image: img,
          cmd,
          labels: testLabels(session),
          networkMode: `container:${daemon.id}`,
        };
        return engine.runToCompletion(
          entrypoint === undefined ? spec : { ...spec, entrypoint },
          120_000,
        );
      };
      const run: Fixture['run'] = async (args) => {
        const r = await joined(image, ['-e', client, ...args], ['node']);
        const last = r.stdout.trim().split('\n').pop() ?? '{}';
        return JSON.parse(last) as Record<string, unknown>;
      };
      await body(t, { daemon, session, run, joined });
    } finally {
      await daemon.stop();
      await engine.removeLabelled({ [LABEL_SESSION]: session });
    }
  },
);

test('10 MB over TCP to a routed address come back byte-exact', withStack, async (t, { run }) => {
  const r = await run(['tcp-echo', podAddr, '7', String(10 * 1024 * 1024)]);
  t.like(r, { bytes: 10 * 1024 * 1024, exact: true });
});

test('a refused port is refused at once', withStack, async (t, { run }) => {
  const r = await run(['tcp-refused', svcAddr, '8']);
  t.is(r.code, 'ECONNREFUSED');
  t.true((r.ms as number) < 1000, `refused after ${String(r.ms)} ms`);
});

test('an unreachable destination fails fast instead of hanging', withStack, async (t, { run }) => {
  const r = await run(['tcp-refused', svcAddr, '9']);
  t.true(['EHOSTUNREACH', 'ECONNREFUSED'].includes(r.code as string), String(r.code));
  t.true((r.ms as number) < 1000, `failed after ${String(r.ms)} ms`);
});

test(
  'a flow the daemon resets by its id ends with ECONNRESET for the client, not with an end',
  withStack,
  async (t, { daemon, run }) => {
    // The same exchange on the plain echo port ends cleanly: the reset is what differs.
    t.like(await run(['tcp-ending', podAddr, '7', '100000']), { code: 'end', received: 100000 });
    t.like(await run(['tcp-ending', podAddr, '10', '100000']), {
      code: 'ECONNRESET',
      received: 100000,
    });
    // The id from the flow header crossed koffi intact: the library found the flow.
    await daemon.waitForLog(/"msg":"flow reset","flowId":"\d+","reset":true/, 5000);
  },
);

test('UDP datagrams to a routed address come back', withStack, async (t, { run }) => {
  t.like(await run(['udp-echo', svcAddr, '7', '20']), { sent: 20, received: 20 });
});

test('a routed address answers ping', withStack, async (t, { joined }) => {
  const r = await joined(samplesImage(), ['ping', podAddr, '3'], ['/samples']);
  t.is(r.exitCode, 0, r.stdout);
  t.regex(r.stdout, /3 sent, 3 received/);
});

test('200 concurrent TCP flows all complete', withStack, async (t, { run }) => {
  const r = await run(['tcp-concurrent', podAddr, '9000', '200', String(64 * 1024)]);
  t.like(r, { flows: 200, ok: 200 });
});

test(
  'after the stack stops nothing is routed and no TUN device is left',
  withStack,
  async (t, { daemon, run, joined }) => {
    t.like(await run(['tcp-connect', podAddr, '7', '2000']), { code: 'connected' });
    await daemon.signal('SIGUSR2');
    await daemon.waitForLog(/stack stopped/);
    t.not((await run(['tcp-connect', podAddr, '7', '2000'])).code, 'connected');
    const r = await joined(
      await daemonImageRef(),
      ['sh', '-c', 'cat /proc/net/route; cat /proc/net/dev'],
      [],
    );
    t.notRegex(r.stdout, /tp0/);
    // /proc/net/route holds addresses in little-endian hex: 198.18.x.x ends in 12C6.
    t.notRegex(r.stdout, /12C6\t/);
  },
);

test('UDP flows close after the idle timeout', withStack, async (t, { daemon, run }) => {
  t.like(await run(['udp-echo', svcAddr, '7', '5']), { sent: 5, received: 5 });
  const sent = Date.now();
  // The selftest logs the stack's stats every 5 s; its UDP idle timeout here is 3 s.
  const line = await daemon.waitForLog(
    new RegExp(`"msg":"stats".*"udpFlows":0,"flowsTotal":[1-9]`),
    15_000,
  );
  const at = Date.parse((JSON.parse(line) as { time: string }).time);
  t.true(at > sent, 'a stats line after the datagrams shows no UDP flow left');
});

test('the bindings start the stack, add and remove routes, and stop it twice leaving no device', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const r = await engine.runToCompletion({
    image: await daemonImageRef(),
    entrypoint: ['node'],
    cmd: ['--input-type=module', '-e', bindingsCheck],
    labels: testLabels(session),
    capAdd: ['NET_ADMIN'],
    devices: ['/dev/net/tun'],
  });
  t.is(r.exitCode, 0, r.stderr);
  // /proc/net/route writes destinations as little-endian hex: 198.18.150.0 is 0096 12C6.
  t.deepEqual(JSON.parse(r.stdout), {
    started: ['009612C6'],
    device: true,
    added: ['009612C6', '009712C6'],
    removed: ['009712C6'],
    stats: ['198.18.151.0/24'],
    unknownFlowReset: false,
    after: { routes: [], device: false, running: false, reset: false },
  });
});
