/**
 * An engagement's traffic end to end on loopback: a client connects to an engaged port of the
 * real agent, which hands it to an accept stream of the real Inbound, which dials the local
 * server. Only the port-forwards are replaced, by plain TCP connections to the agent's port,
 * and the engaged ports listen on 127.0.0.1 instead of all interfaces.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { get, createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { Agent } from '../../agent/agent.js';
import type { AgentPort } from '../../src/contract/agent.js';
import { Inbound, type InboundOptions } from '../../src/daemon/inbound.js';
import { dial, freePort, listen, loopbackAgent } from './agent-fixture.js';

interface Setup {
  agent: Agent;
  inbound: Inbound;
  /** The engaged (cluster) port. */
  port: number;
}

/** An agent engaging one port, and an Inbound that sends it to `localPort`. */
async function engage(
  t: ExecutionContext,
  protocol: AgentPort['protocol'],
  localPort: number,
  opts: Partial<InboundOptions> = {},
): Promise<Setup> {
  const port = await freePort();
  const agent = await loopbackAgent({ ports: [{ port, protocol }] }, { udpIdleMs: 2000 });
  const inbound = new Inbound({
    open: () => dial(agent.port),
    pods: ['echo-0'],
    ports: new Map([[port, localPort]]),
    ...opts,
  });
  t.teardown(async () => {
    await inbound.stop();
    await agent.stop();
  });
  inbound.start();
  await until(() => inbound.stats().waiting === (opts.streamsPerPod ?? 2));
  return { agent, inbound, port };
}

async function until(ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function serve(t: ExecutionContext, server: Server | ReturnType<typeof createHttpServer>) {
  const port = await listen(server);
  t.teardown(
    () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  );
  return port;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    }).once('error', reject);
  });
}

test('an HTTP request to an engaged port reaches the local server and its answer comes back', async (t) => {
  const local = await serve(
    t,
    createHttpServer((req, res) => {
      res.end(`local answered ${req.method ?? ''} ${req.url ?? ''}`);
    }),
  );
  const { port, inbound } = await engage(t, 'TCP', local);
  t.deepEqual(await httpGet(port, '/hello'), { status: 200, body: 'local answered GET /hello' });
  t.deepEqual(await httpGet(port, '/again'), { status: 200, body: 'local answered GET /again' });
  t.like(inbound.stats(), { accepted: 2, refused: 0 });
  // The streams used are replaced, so the next client finds one waiting.
  await until(() => inbound.stats().waiting === 2);
});

test('a long connection stays open and carries 10 MB each way byte-exact, with half-close', async (t) => {
  const local = await serve(
    t,
    createServer({ allowHalfOpen: true }, (s) => s.pipe(s)),
  );
  const { port, inbound } = await engage(t, 'TCP', local);
  const client = await dial(port);
  const payload = randomBytes(10 * 1024 * 1024);
  const got = createHash('sha256');
  let bytes = 0;
  client.on('data', (c: Buffer) => {
    bytes += c.length;
    got.update(c);
  });
  const ended = new Promise((resolve) => client.once('end', resolve));
  // Written in pieces over time, so the connection lives across many event-loop turns.
  for (let off = 0; off < payload.length; off += 1024 * 1024) {
    client.write(payload.subarray(off, off + 1024 * 1024));
    await new Promise((r) => setTimeout(r, 20));
  }
  t.is(inbound.stats().active, 1);
  client.end();
  await ended;
  t.is(bytes, payload.length);
  t.is(got.digest('hex'), createHash('sha256').update(payload).digest('hex'));
  client.destroy();
  await until(() => inbound.stats().active === 0);
});

test('a local port that refuses resets the client in the cluster', async (t) => {
  const closed = createServer();
  const local = await listen(closed);
  await new Promise((r) => closed.close(r));
  const { port, inbound } = await engage(t, 'TCP', local);
  const client = await dial(port);
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
  t.is(err.code, 'ECONNRESET');
  t.like(inbound.stats(), { accepted: 1, refused: 1 });
});

test('a port with no local port mapped resets the client too', async (t) => {
  const { port, inbound } = await engage(t, 'TCP', 1, { ports: new Map() });
  const client = await dial(port);
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
  t.is(err.code, 'ECONNRESET');
  t.like(inbound.stats(), { refused: 1 });
});

test('UDP datagrams reach the local server and its answers come back, per client', async (t) => {
  const server = createSocket('udp4');
  server.on('message', (m, rinfo) => {
    server.send(Buffer.concat([Buffer.from('re:'), m]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port, inbound } = await engage(t, 'UDP', server.address().port);

  const exchange = async (words: string[]): Promise<string[]> => {
    const client = createSocket('udp4');
    const replies: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on('message', (m) => {
        replies.push(m.toString());
        if (replies.length === words.length) resolve();
      }),
    );
    await new Promise<void>((resolve) => {
      client.connect(port, '127.0.0.1', resolve);
    });
    for (const w of words) client.send(w);
    await all;
    client.close();
    return replies.sort();
  };
  t.deepEqual(await exchange(['one', 'two']), ['re:one', 're:two']);
  t.deepEqual(await exchange(['three']), ['re:three']);
  // One accept stream per client address.
  t.like(inbound.stats(), { accepted: 2, active: 2 });
});

test('a client that arrives before any accept stream is held until one does', async (t) => {
  const local = await serve(
    t,
    createHttpServer((_req, res) => res.end('late but answered')),
  );
  const port = await freePort();
  await using agent = await loopbackAgent({ ports: [{ port, protocol: 'TCP' }] });
  const answer = httpGet(port, '/');
  await new Promise((r) => setTimeout(r, 300));
  await using inbound = new Inbound({
    open: () => dial(agent.port),
    pods: ['echo-0'],
    ports: new Map([[port, local]]),
  });
  inbound.start();
  t.deepEqual(await answer, { status: 200, body: 'late but answered' });
});

test('an agent that cannot be reached is retried with backoff, not in a loop', async (t) => {
  let opens = 0;
  await using inbound = new Inbound({
    open: () => {
      opens += 1;
      return Promise.reject(new Error('pod not found'));
    },
    pods: ['gone-0'],
    ports: new Map(),
  });
  inbound.start();
  await new Promise((r) => setTimeout(r, 1200));
  // 2 at once, then one retry after 500 ms (and another after 1 s): never dozens.
  t.true(opens >= 2 && opens <= 6, `${opens} opens`);
  t.like(inbound.stats(), { waiting: 0, lastError: 'gone-0: pod not found' });
});

test('pods that roll are followed: a new pod gets streams, a gone one loses them', async (t) => {
  const local = await serve(
    t,
    createHttpServer((_req, res) => res.end('ok')),
  );
  const { port, inbound, agent } = await engage(t, 'TCP', local);
  const opened: string[] = [];
  const second = new Inbound({
    open: (pod) => {
      opened.push(pod);
      return dial(agent.port);
    },
    pods: ['a'],
    ports: new Map([[port, local]]),
    streamsPerPod: 1,
  });
  t.teardown(() => second.stop());
  second.start();
  await until(() => second.stats().waiting === 1);
  second.setPods(['b']);
  await until(() => second.stats().waiting === 1 && opened.includes('b'));
  t.deepEqual(opened, ['a', 'b']);
  t.is(inbound.stats().waiting, 2);
});

test('stop() is idempotent, closes the waiting streams and ends relayed connections', async (t) => {
  const local = await serve(
    t,
    createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    }),
  );
  const { port, inbound } = await engage(t, 'TCP', local);
  const client = await dial(port);
  client.write('hi');
  await new Promise((resolve) => client.once('data', resolve));
  const closed = new Promise((resolve) => client.once('close', resolve));
  client.on('error', () => undefined);
  await Promise.all([inbound.stop(), inbound.stop()]);
  await inbound.stop();
  await closed;
  t.like(inbound.stats(), { waiting: 0, active: 0 });
});
