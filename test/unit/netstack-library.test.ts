import test from 'ava';
import { fileURLToPath } from 'node:url';
import { TpError } from '../../src/lib/errors.js';
import { loadNetstack, type NetstackLibrary } from '../../src/netstack/library.js';
import { RunningNetstack } from '../../src/netstack/stack.js';

// The real Go library, built on the host by `npm run build:netstack` (pretest:unit), bound
// with koffi. Calls that need a TUN device run in the docker tier.
const path = fileURLToPath(new URL('../../dist/netstack/libtpnetstack.so', import.meta.url));

test('the library loads through koffi and reports its version', (t) => {
  t.regex(loadNetstack(path).version(), /\S/);
});

test('a library that is not there is a config error that names the fix', (t) => {
  const err = t.throws(() => loadNetstack('/nonexistent/libtpnetstack.so'), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'config', code: 'NETSTACK_LOAD' });
});

test('a start with a bad configuration fails with the library reason and no handle', (t) => {
  const lib = loadNetstack(path);
  const err = t.throws(
    () =>
      lib.start({
        tunName: 'tpunit0',
        mtu: 10,
        routes: [],
        socketPath: '/nonexistent/flows.sock',
        udpIdleTimeoutMs: 1000,
      }),
    { instanceOf: TpError },
  );
  t.like(err, { code: 'NETSTACK_FAILED' });
  t.regex(err.message, /mtu/i);
});

test('stats on a handle that does not exist fail; stop on it is harmless', (t) => {
  const lib = loadNetstack(path);
  t.throws(() => lib.stats(987654), { message: /no netstack with handle 987654/ });
  t.notThrows(() => {
    lib.stop(987654);
    lib.stop(987654);
  });
});

test('a flow reset on a handle that does not exist fails; an id that is not a u64 is refused before the call', (t) => {
  const lib = loadNetstack(path);
  // The largest u64 crosses koffi: the library answers, for the handle.
  t.throws(() => lib.resetFlow(987654, (1n << 64n) - 1n), {
    message: /no netstack with handle 987654/,
  });
  t.throws(() => lib.resetFlow(987654, 1n << 64n), { instanceOf: RangeError });
  t.throws(() => lib.resetFlow(987654, -1n), { instanceOf: RangeError });
});

test('a stopped stack resets nothing and does not ask the library', async (t) => {
  const calls: string[] = [];
  const fake: NetstackLibrary = {
    version: () => 'fake',
    probeTun: () => ({ ok: true, message: 'ok' }),
    start: () => 7,
    addRoute: () => undefined,
    removeRoute: () => undefined,
    stats: () => {
      throw new Error('not used');
    },
    resetFlow: (h, id) => {
      calls.push(`reset ${h} ${id}`);
      return id === 1n;
    },
    stop: (h) => {
      calls.push(`stop ${h}`);
    },
  };
  const stack = RunningNetstack.start(fake, {
    tunName: 'tpunit0',
    mtu: 1500,
    routes: [],
    socketPath: '/nonexistent/flows.sock',
    udpIdleTimeoutMs: 1000,
  });
  t.true(stack.resetFlow(1n));
  t.false(stack.resetFlow(2n));
  await stack.stop();
  t.false(stack.resetFlow(1n));
  t.deepEqual(calls, ['reset 7 1', 'reset 7 2', 'stop 7']);
});
