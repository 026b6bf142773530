/**
 * The tunnel protocol end to end on loopback: the real tp-manager, the real pool and frames.
 * Only the port-forward is replaced, by a plain TCP connection to the manager (the e2e tier
 * runs the same code through the API server).
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { PassThrough } from 'node:stream';
import { startManager } from '../../agent/manager.js';
import { TunnelPool } from '../../src/daemon/tunnel-pool.js';
import dnsPacket from 'dns-packet';
import { exchangeOverStream, frame, unframe } from '../../src/daemon/dns/upstream.js';
import { buildQuery } from '../../src/daemon/dns/message.js';
import {
  DatagramTunnel,
  FramedStream,
  FrameParser,
  FrameType,
  encodeFrame,
  spliceStream,
} from '../../src/tunnel/frames.js';
import { readLine } from '../../src/tunnel/protocol.js';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A manager on a free port, a pool that reaches it over plain TCP, both stopped afterwards. */
const withTunnel = test.macro(
  async (t, body: (t: import('ava').ExecutionContext, pool: TunnelPool) => Promise<void>) => {
    const manager = await startManager({ port: 0, dialTimeoutMs: 1000, udpIdleMs: 2000 });
    const pool = new TunnelPool({
      size: 2,
      open: () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: manager.port, allowHalfOpen: true }, () => {
            resolve(s);
          });
          s.once('error', reject);
        }),
    });
    try {
      await pool.start();
      await body(t, pool);
    } finally {
      await pool.stop();
      await manager.stop();
    }
  },
);

test('frames parse the same whatever the chunking', (t) => {
  const frames = [encodeFrame(FrameType.data, Buffer.from('hello')), encodeFrame(FrameType.fin)];
  const wire = Buffer.concat(frames);
  for (let cut = 0; cut <= wire.length; cut++) {
    const got: [number, string][] = [];
    const p = new FrameParser((type, payload) => got.push([type, payload.toString()]));
    p.push(wire.subarray(0, cut));
    p.push(wire.subarray(cut));
    t.deepEqual(got, [
      [FrameType.data, 'hello'],
      [FrameType.fin, ''],
    ]);
  }
});

test('readLine returns the line and leaves what follows it in the stream', async (t) => {
  const s = new PassThrough();
  s.write('{"ok":true}\nrest');
  t.is(await readLine(s), '{"ok":true}');
  t.is((s.read() as Buffer).toString(), 'rest');
});

test(
  'a TCP flow through the manager echoes 4 MiB byte-exact, with half-close',
  withTunnel,
  async (t, pool) => {
    const echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    const port = await listen(echo);
    t.teardown(() => echo.close());
    const r = await pool.dial('tcp', '127.0.0.1', port);
    if (!r.ok) throw new Error(r.message);
    // A socket pair stands for the netstack: `plain` is what it hands over, `client` the app.
    const handoff = createServer({ allowHalfOpen: true });
    const plainP = new Promise<Socket>((resolve) => handoff.once('connection', resolve));
    const client = connect({ host: '127.0.0.1', port: await listen(handoff), allowHalfOpen: true });
    t.teardown(() => handoff.close());
    const done = spliceStream(await plainP, r.stream);
    const payload = randomBytes(4 * 1024 * 1024);
    const got = createHash('sha256');
    let bytes = 0;
    client.on('data', (c: Buffer) => {
      bytes += c.length;
      got.update(c);
    });
    const ended = new Promise((resolve) => client.on('end', resolve));
    client.end(payload);
    await ended;
    t.is(bytes, payload.length);
    t.is(got.digest('hex'), createHash('sha256').update(payload).digest('hex'));
    t.is(await done, 'closed');
    client.destroy();
  },
);

test('a closed port is reported as refused', withTunnel, async (t, pool) => {
  const closed = createServer();
  const port = await listen(closed);
  await new Promise((r) => closed.close(r));
  t.like(await pool.dial('tcp', '127.0.0.1', port), { ok: false, error: 'refused' });
});

test('a UDP flow through the manager carries datagrams both ways', withTunnel, async (t, pool) => {
  const server = createSocket('udp4');
  server.on('message', (m, rinfo) => {
    server.send(Buffer.concat([Buffer.from('re:'), m]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const r = await pool.dial('udp', '127.0.0.1', server.address().port);
  if (!r.ok) throw new Error(r.message);
  const tunnel = new DatagramTunnel(r.stream);
  const replies: string[] = [];
  const two = new Promise<void>((resolve) =>
    tunnel.on('datagram', (d) => {
      replies.push(d.toString());
      if (replies.length === 2) resolve();
    }),
  );
  tunnel.send(Buffer.from('one'));
  tunnel.send(Buffer.from('two'));
  await two;
  t.deepEqual(replies.sort(), ['re:one', 're:two']);
  tunnel.close();
});

test('the pool keeps streams open ahead of need and reports them', withTunnel, async (t, pool) => {
  await new Promise((r) => setTimeout(r, 100));
  const s = pool.snapshot();
  t.is(s.state, 'ready');
  t.is(s.idle, 2);
});

test('when the manager is gone, dials fail fast and the pool says it is reconnecting', async (t) => {
  const manager = await startManager({ port: 0 });
  const port = manager.port;
  const pool = new TunnelPool({
    size: 1,
    open: () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
          resolve(s);
        });
        s.once('error', reject);
      }),
  });
  t.teardown(() => pool.stop());
  await pool.start();
  await manager.stop();
  const start = Date.now();
  const r = await pool.dial('tcp', '127.0.0.1', 9);
  t.false(r.ok);
  t.true(Date.now() - start < 2000);
  t.is(pool.snapshot().state, 'reconnecting');
});

test(
  'a DNS query over TCP crosses a tunnel stream and its whole answer comes back',
  withTunnel,
  async (t, pool) => {
    // A TCP DNS server answering with 300 records: far more than any UDP answer could hold.
    const dns = createServer((socket) => {
      // The client drops the stream once it has its answer; the manager then resets this end.
      socket.on('error', () => undefined);
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        const { messages, rest } = unframe(Buffer.concat([pending, chunk]));
        pending = rest;
        for (const q of messages) {
          const query = dnsPacket.decode(q);
          const name = query.questions?.[0]?.name ?? '';
          const answers = Array.from({ length: 300 }, (_, i) => ({
            type: 'A' as const,
            name,
            ttl: 5,
            data: `198.18.${100 + (i >> 8)}.${i & 255}`,
          }));
          const response = dnsPacket.encode({ ...query, type: 'response', answers });
          socket.write(frame(response));
        }
      });
    });
    const port = await listen(dns);
    t.teardown(() => dns.close());
    const r = await pool.dial('tcp', '127.0.0.1', port);
    if (!r.ok) return t.fail(r.message);
    const query = buildQuery({ id: 77, name: 'many.samples.svc.cluster.local', type: 'A' });
    const answer = dnsPacket.decode(
      await exchangeOverStream(new FramedStream(r.stream), query, 5000),
    );
    t.is(answer.id, 77);
    t.is(answer.answers?.length, 300);
  },
);

test('a framed stream ends on the peer’s FIN and fails on its RST', async (t) => {
  const fin = new PassThrough();
  const a = new FramedStream(fin);
  const got: string[] = [];
  a.on('data', (b: Buffer) => got.push(b.toString()));
  const ended = new Promise((resolve) => a.once('end', resolve));
  fin.write(
    Buffer.concat([encodeFrame(FrameType.data, Buffer.from('hi')), encodeFrame(FrameType.fin)]),
  );
  await ended;
  t.deepEqual(got, ['hi']);

  const rst = new PassThrough();
  const b = new FramedStream(rst);
  b.resume();
  const failed = new Promise<Error>((resolve) => b.once('error', resolve));
  rst.write(encodeFrame(FrameType.rst));
  t.regex((await failed).message, /reset/);
});

test('a half-open tunnel socket that ends without a FIN frame resets the relayed connection', async (t) => {
  // tp-manager's side: the tunnel is a half-open TCP socket, so its end brings no 'close'.
  const tunnelServer = createServer({ allowHalfOpen: true });
  const plainServer = createServer();
  const tunnelPort = await listen(tunnelServer);
  const plainPort = await listen(plainServer);
  t.teardown(() => {
    tunnelServer.close();
    plainServer.close();
  });
  const tunnelSide = new Promise<Socket>((resolve) => tunnelServer.once('connection', resolve));
  const plainSide = new Promise<Socket>((resolve) => plainServer.once('connection', resolve));
  const peer = connect({ port: tunnelPort, host: '127.0.0.1' });
  const client = connect({ port: plainPort, host: '127.0.0.1' });
  const clientClosed = new Promise<boolean>((resolve) => {
    client.on('error', () => undefined);
    client.once('close', resolve);
  });
  const spliced = spliceStream(await plainSide, await tunnelSide);
  // The port-forward goes away: the stream ends, with no FIN or RST frame before it.
  peer.end();
  t.is(await spliced, 'tunnel-lost');
  t.true(await clientClosed, 'the client sees an error, not a clean end');
});
