/**
 * The helper that publishes --docker-run's -p ports, on loopback: what reaches its ports
 * reaches the target, both ways, half-closes and refusals included.
 */
import test from 'ava';
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { parseForwardArgs, startForwarder } from '../../src/daemon/forward.js';
import { dial, freePort, listen } from './agent-fixture.js';

function readAll(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    s.on('data', (b: Buffer) => (data += b.toString()));
    s.once('end', () => {
      resolve(data);
    });
    s.once('error', reject);
  });
}

test('the forward role reads TARGET PORT/PROTO...', (t) => {
  t.deepEqual(parseForwardArgs(['198.19.128.2', '8080/tcp', '53/udp']), {
    target: '198.19.128.2',
    ports: [
      { listen: 8080, port: 8080, protocol: 'tcp' },
      { listen: 53, port: 53, protocol: 'udp' },
    ],
  });
  t.throws(() => parseForwardArgs(['198.19.128.2']));
  t.throws(() => parseForwardArgs(['198.19.128.2', '8080/sctp']));
});

test('a TCP connection is relayed both ways, and a half-closed request still gets its answer', async (t) => {
  // The server answers only once the client has finished sending.
  const server = createServer({ allowHalfOpen: true }, (s) => {
    void readAll(s).then((got) => s.end(`got ${got}`));
  });
  const port = await listen(server);
  t.teardown(() => server.close());
  await using fwd = await startForwarder({
    target: '127.0.0.1',
    listenHost: '127.0.0.1',
    ports: [{ listen: 0, port, protocol: 'tcp' }],
  });
  const front = fwd.bound[0]?.listen ?? 0;
  const s = await dial(front);
  const answer = readAll(s);
  s.end('hello');
  t.is(await answer, 'got hello');
});

test('a refused target resets the client', async (t) => {
  const closed = await freePort();
  await using fwd = await startForwarder({
    target: '127.0.0.1',
    listenHost: '127.0.0.1',
    ports: [{ listen: 0, port: closed, protocol: 'tcp' }],
  });
  const s = await dial(fwd.bound[0]?.listen ?? 0);
  const err = await t.throwsAsync(readAll(s));
  t.is((err as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
});

test('UDP datagrams are relayed, and each client gets its own answers', async (t) => {
  const echo = createSocket('udp4');
  echo.on('message', (m, from) => {
    echo.send(Buffer.concat([Buffer.from('re:'), m]), from.port, from.address);
  });
  await new Promise<void>((resolve) => {
    echo.bind(0, '127.0.0.1', resolve);
  });
  t.teardown(() => echo.close());
  await using fwd = await startForwarder({
    target: '127.0.0.1',
    listenHost: '127.0.0.1',
    ports: [{ listen: 0, port: echo.address().port, protocol: 'udp' }],
  });
  const front = fwd.bound[0]?.listen ?? 0;
  const ask = async (text: string): Promise<string> => {
    const c = createSocket('udp4');
    try {
      const answer = new Promise<string>((resolve) => {
        c.once('message', (m) => {
          resolve(m.toString());
        });
      });
      c.send(text, front, '127.0.0.1');
      return await answer;
    } finally {
      c.close();
    }
  };
  t.deepEqual(await Promise.all([ask('one'), ask('two')]), ['re:one', 're:two']);
});

test('stop() closes the ports and may be called again', async (t) => {
  const fwd = await startForwarder({
    target: '127.0.0.1',
    listenHost: '127.0.0.1',
    ports: [{ listen: 0, port: 9, protocol: 'tcp' }],
  });
  const front = fwd.bound[0]?.listen ?? 0;
  await fwd.stop();
  await fwd.stop();
  await t.throwsAsync(dial(front), { code: 'ECONNREFUSED' });
});
