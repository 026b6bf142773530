import test from 'ava';
import { fileURLToPath } from 'node:url';
import { TpError } from '../../src/lib/errors.js';
import { loadNetstack } from '../../src/netstack/library.js';

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
