import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowServer, type FlowHandler } from '../../src/netstack/flow-server.js';
import { encodeHeader, type FlowHeader } from '../../src/netstack/header.js';

// These tests play the netstack's side of the hand-off protocol over a real unix socket; the
// docker tier runs the real Go stack against the same server.

const header = (proto: 'tcp' | 'udp', port: number, flowId = 1n): FlowHeader => ({
  proto,
  family: 4,
  src: { address: '198.19.0.2', port: 40000 },
  dst: { address: '198.18.128.20', port },
  flowId,
});

/** Echo on port 7, refuse 8, unreachable 9: the docker tier's handler, in miniature. */
const handler: FlowHandler = {
  tcp: (h) => (h.dst.port === 7 ? (s) => s.pipe(s) : h.dst.port === 8 ? 'refused' : 'unreachable'),
  udp: (h) => (h.dst.port === 7 ? (f) => f.on('datagram', (d) => f.send(d)) : 'refused'),
};

async function withServer(run: (path: string, server: FlowServer) => Promise<void>): Promise<void> {
  const path = join(mkdtempSync(join(tmpdir(), 'tp-flows-')), 'flows.sock');
  await using server = await FlowServer.listen(path, handler);
  await run(path, server);
}

function open(path: string, h: FlowHeader): Promise<{ socket: Socket; verdict: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true }, () => socket.write(encodeHeader(h)));
    socket.once('error', reject);
    socket.once('readable', () => {
      const v = socket.read(1) as Buffer | null;
      resolve({ socket, verdict: v?.[0] ?? -1 });
    });
  });
}

function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => {
      resolve(Buffer.concat(chunks));
    });
  });
}

test('an accepted TCP flow carries bytes both ways and half-closes', async (t) => {
  await withServer(async (path, server) => {
    const { socket, verdict } = await open(path, header('tcp', 7));
    t.is(verdict, 0);
    const payload = randomBytes(4 * 1024 * 1024);
    const echoed = readAll(socket);
    socket.end(payload);
    t.true((await echoed).equals(payload));
    t.like(server.stats, { total: 1, refused: 0 });
  });
});

test('refused and unreachable flows get their verdict and are closed', async (t) => {
  await withServer(async (path, server) => {
    for (const [port, want] of [
      [8, 1],
      [9, 2],
    ] as const) {
      const { socket, verdict } = await open(path, header('tcp', port));
      t.is(verdict, want);
      await readAll(socket);
    }
    t.like(server.stats, { refused: 1, unreachable: 1 });
  });
});

test('a UDP flow carries length-framed datagrams both ways', async (t) => {
  await withServer(async (path) => {
    const { socket, verdict } = await open(path, header('udp', 7));
    t.is(verdict, 0);
    const frames = ['one', 'two', 'x'.repeat(1400)].map((s) => {
      const b = Buffer.alloc(2 + s.length);
      b.writeUInt16BE(s.length, 0);
      b.write(s, 2);
      return b;
    });
    const got = new Promise<Buffer>((resolve) => {
      let acc = Buffer.alloc(0);
      const want = frames.reduce((n, f) => n + f.length, 0);
      socket.on('data', (c: Buffer) => {
        acc = Buffer.concat([acc, c]);
        if (acc.length >= want) resolve(acc);
      });
    });
    // Written in one go, so the server must split frames that arrive together.
    socket.write(Buffer.concat(frames));
    t.true((await got).equals(Buffer.concat(frames)));
    socket.destroy();
  });
});

test('a connection that sends no valid header is dropped and counted', async (t) => {
  await withServer(async (path, server) => {
    const socket = connect({ path });
    socket.end(Buffer.from('not a header at all, but long enough to be read as one.....'));
    await new Promise((r) => socket.once('close', r));
    t.is(server.stats.malformed, 1);
  });
});

test('stopping the server twice is harmless and ends open flows', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'tp-flows-')), 'flows.sock');
  const server = await FlowServer.listen(path, handler);
  const { socket } = await open(path, header('tcp', 7));
  // The client is half-open-capable, so the server's end shows as 'end', not 'close'.
  const closed = new Promise((r) => socket.once('end', r));
  socket.resume();
  await server.stop();
  await server.stop();
  await closed;
  t.is(server.stats.open, 0);
});
