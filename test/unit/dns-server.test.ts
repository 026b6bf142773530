import test from 'ava';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import {
  Rcode,
  RrType,
  buildQuery,
  buildResponse,
  readHeader,
  readQuestion,
  readSections,
  type ResourceRecord,
} from '../../src/daemon/dns/message.js';
import { nameToString } from '../../src/daemon/dns/name.js';
import { DnsServer, type DnsServerOptions } from '../../src/daemon/dns/server.js';
import { frame, unframe } from '../../src/daemon/dns/upstream.js';
import { TpError } from '../../src/lib/errors.js';

// Real UDP and TCP sockets on 127.0.0.1. The cluster side (the tunnel to the cluster's DNS) is
// a function the test fakes; upstream nameservers are small real DNS responders.

const CLUSTER_IP = [198, 18, 128, 20];
const UPSTREAM_IP = [198, 18, 200, 1];

const aRecord = (query: Buffer, ip: number[], owner?: Buffer): ResourceRecord => ({
  owner: owner ?? readQuestion(query).wire,
  type: RrType.A,
  class: 1,
  ttl: 30,
  rdata: Buffer.from(ip),
});

const answer = (query: Buffer, ip: number[], count = 1): Buffer =>
  buildResponse(query, {
    rcode: Rcode.noError,
    answers: Array.from({ length: count }, () => aRecord(query, ip)),
  });

/** A fake cluster DNS: answers the names it knows, NXDOMAIN for the rest; records what it saw. */
function fakeCluster(known: string[]): { cluster: DnsServerOptions['cluster']; asked: string[] } {
  const asked: string[] = [];
  const cluster = (query: Buffer): Promise<Buffer> => {
    const { name } = readQuestion(query);
    asked.push(name);
    return Promise.resolve(
      known.includes(name)
        ? answer(query, CLUSTER_IP)
        : buildResponse(query, { rcode: Rcode.nxDomain }),
    );
  };
  return { cluster, asked };
}

interface FakeUpstream {
  address: string;
  asked: string[];
  tcpAsked: string[];
  close(): Promise<void>;
}

/** A real DNS responder on UDP and TCP of one free port; `truncate` makes UDP answers TC. */
async function fakeUpstream(opts: { truncate?: boolean } = {}): Promise<FakeUpstream> {
  for (;;) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const tcp = createServer();
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => {
        resolve(false);
      });
      tcp.listen(port, '127.0.0.1', () => {
        resolve(true);
      });
    });
    if (!listening) {
      udp.close();
      continue;
    }
    const fake: FakeUpstream = {
      address: `127.0.0.1:${port}`,
      asked: [],
      tcpAsked: [],
      close: () =>
        new Promise((resolve) => {
          udp.close();
          tcp.close(() => {
            resolve();
          });
        }),
    };
    udp.on('message', (q, peer) => {
      fake.asked.push(readQuestion(q).name);
      const r = answer(q, UPSTREAM_IP, opts.truncate === true ? 0 : 1);
      if (opts.truncate === true) r.writeUInt16BE(readHeader(r).flags | 0x0200, 2);
      udp.send(r, peer.port, peer.address);
    });
    tcp.on('connection', (s) => {
      s.on('data', (chunk: Buffer) => {
        for (const q of unframe(chunk).messages) {
          fake.tcpAsked.push(readQuestion(q).name);
          s.write(frame(answer(q, UPSTREAM_IP, 2)));
        }
      });
    });
    return fake;
  }
}

async function startServer(opts: Partial<DnsServerOptions> = {}): Promise<DnsServer> {
  return DnsServer.start({
    port: 0,
    clusterDomain: 'cluster.local',
    namespace: 'samples',
    cluster: fakeCluster([]).cluster,
    upstream: [],
    ...opts,
  });
}

function udpAsk(port: number, msg: Buffer, timeoutMs = 3000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket: UdpSocket = createSocket('udp4');
    const done = (r: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(r);
    };
    const timer = setTimeout(() => {
      done(undefined);
    }, timeoutMs);
    socket.on('message', (r) => {
      done(r);
    });
    socket.send(msg, port, '127.0.0.1');
  });
}

async function ask(port: number, name: string, id = 0x1234, type = RrType.A): Promise<Buffer> {
  const r = await udpAsk(port, buildQuery({ id, name, type }));
  if (r === undefined) throw new Error(`no answer for ${name}`);
  return r;
}

/** Sends all queries in one write on one connection and collects `expect` answers. */
function tcpAsk(port: number, queries: Buffer[], expect = queries.length): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let pending: Buffer = Buffer.alloc(0);
    const answers: Buffer[] = [];
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.concat(queries.map(frame))));
    socket.on('data', (chunk: Buffer) => {
      const { messages, rest } = unframe(Buffer.concat([pending, chunk]));
      pending = rest;
      answers.push(...messages);
      if (answers.length === expect) {
        socket.end();
        resolve(answers);
      }
    });
  });
}

const ips = (r: Buffer): string[] => readSections(r).answers.map((a) => [...a.rdata].join('.'));
const owners = (r: Buffer): string[] => readSections(r).answers.map((a) => nameToString(a.owner));

test('cluster names go to the cluster and keep the client id (cluster side faked)', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({ cluster: fake.cluster, upstream: [upstream.address] });
  const r = await ask(server.port, 'Echo.Samples.svc.Cluster.Local', 0xbeef);
  t.like(readHeader(r), { id: 0xbeef, qr: true, rcode: Rcode.noError });
  t.deepEqual(ips(r), ['198.18.128.20']);
  t.deepEqual(fake.asked, ['echo.samples.svc.cluster.local']);
  t.deepEqual(upstream.asked, []);
  t.like(server.stats(), { queries: 1, cluster: 1, upstream: 0 });
});

test('other names go to the upstream over UDP and the client id is restored', async (t) => {
  const fake = fakeCluster([]);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({ cluster: fake.cluster, upstream: [upstream.address] });
  const r = await ask(server.port, 'www.example.test', 0x0042);
  t.like(readHeader(r), { id: 0x0042, rcode: Rcode.noError });
  t.deepEqual(ips(r), ['198.18.200.1']);
  t.deepEqual(upstream.asked, ['www.example.test']);
  t.deepEqual(fake.asked, []);
  t.like(server.stats(), { queries: 1, cluster: 0, upstream: 1 });
});

test('short names are tried in the cluster first and answered under the asked name (cluster side faked)', async (t) => {
  const fake = fakeCluster([
    'echo.samples.svc.cluster.local',
    'store-0.store.samples.svc.cluster.local',
    'web.other.svc.cluster.local',
  ]);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({ cluster: fake.cluster, upstream: [upstream.address] });
  for (const name of ['echo', 'store-0.store', 'web.other']) {
    const r = await ask(server.port, name);
    t.deepEqual(ips(r), ['198.18.128.20'], name);
    t.deepEqual(owners(r), [name]);
    t.is(readQuestion(r).name, name);
  }
  t.true(fake.asked.includes('web.other.svc.cluster.local'));
  // Not in the cluster: the name as typed goes upstream.
  t.deepEqual(ips(await ask(server.port, 'example.test')), ['198.18.200.1']);
  t.deepEqual(upstream.asked, ['example.test']);
  t.like(server.stats(), { cluster: 3, upstream: 1 });
});

test('with expandShortNames off, short names go straight upstream (cluster side faked)', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({
    cluster: fake.cluster,
    upstream: [upstream.address],
    expandShortNames: false,
  });
  t.deepEqual(ips(await ask(server.port, 'echo')), ['198.18.200.1']);
  t.deepEqual(fake.asked, []);
});

test('reverse names go to the cluster only when clusterReverse claims them (cluster side faked)', async (t) => {
  const fake = fakeCluster(['20.128.18.198.in-addr.arpa']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({
    cluster: fake.cluster,
    upstream: [upstream.address],
    clusterReverse: (name) => name.endsWith('.18.198.in-addr.arpa'),
  });
  await ask(server.port, '20.128.18.198.in-addr.arpa', 1, RrType.PTR);
  await ask(server.port, '1.0.19.198.in-addr.arpa', 2, RrType.PTR);
  t.deepEqual(fake.asked, ['20.128.18.198.in-addr.arpa']);
  t.deepEqual(upstream.asked, ['1.0.19.198.in-addr.arpa']);
});

test('TCP carries several queries on one connection, each with its id', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({ cluster: fake.cluster, upstream: [upstream.address] });
  const answers = await tcpAsk(server.port, [
    buildQuery({ id: 11, name: 'echo.samples.svc.cluster.local', type: RrType.A }),
    buildQuery({ id: 12, name: 'www.example.test', type: RrType.A }),
  ]);
  const byId = new Map(answers.map((r) => [readHeader(r).id, ips(r)]));
  t.deepEqual(byId.get(11), ['198.18.128.20']);
  t.deepEqual(byId.get(12), ['198.18.200.1']);
});

test('a truncated UDP answer from the upstream is asked again over TCP', async (t) => {
  const upstream = await fakeUpstream({ truncate: true });
  t.teardown(() => upstream.close());
  await using server = await startServer({ upstream: [upstream.address] });
  const r = await ask(server.port, 'big.example.test', 0x7777);
  t.like(readHeader(r), { id: 0x7777, tc: false, rcode: Rcode.noError });
  t.deepEqual(ips(r), ['198.18.200.1', '198.18.200.1']);
  t.deepEqual(upstream.asked, ['big.example.test']);
  t.deepEqual(upstream.tcpAsked, ['big.example.test']);
});

test('an answer too big for the client is sent truncated over UDP and whole over TCP (cluster side faked)', async (t) => {
  const cluster = (q: Buffer): Promise<Buffer> => Promise.resolve(answer(q, CLUSTER_IP, 40));
  await using server = await startServer({ cluster });
  const name = 'many.samples.svc.cluster.local';
  const udp = await ask(server.port, name, 5);
  t.like(readHeader(udp), { id: 5, tc: true, ancount: 0 });
  const [tcp] = await tcpAsk(server.port, [buildQuery({ id: 6, name, type: RrType.A })]);
  t.is(tcp && readSections(tcp).answers.length, 40);
});

test('the next upstream is asked when the first one stays silent', async (t) => {
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({
    upstream: [`127.0.0.1:${silent.address().port}`, upstream.address],
    timeoutMs: 1000,
  });
  const started = Date.now();
  t.deepEqual(ips(await ask(server.port, 'www.example.test')), ['198.18.200.1']);
  t.true(Date.now() - started < 1000);
});

test('a slow or failing cluster gives SERVFAIL within the timeout (cluster side faked)', async (t) => {
  const slow = (): Promise<Buffer> => new Promise(() => undefined);
  await using server = await startServer({ cluster: slow, timeoutMs: 300 });
  const started = Date.now();
  const r = await ask(server.port, 'echo.samples.svc.cluster.local', 0x99);
  const elapsed = Date.now() - started;
  t.like(readHeader(r), { id: 0x99, rcode: Rcode.servFail });
  t.true(elapsed >= 250 && elapsed < 1500, `${elapsed} ms`);

  const failing = (): Promise<Buffer> => Promise.reject(new Error('tunnel down'));
  await using other = await startServer({ cluster: failing });
  const r2 = await ask(other.port, 'echo.samples.svc.cluster.local');
  t.is(readHeader(r2).rcode, Rcode.servFail);
  t.like(other.stats(), { failures: 1 });
});

test('malformed packets are dropped and the server keeps answering (cluster side faked)', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  await using server = await startServer({ cluster: fake.cluster });
  const good = buildQuery({ id: 1, name: 'echo.samples.svc.cluster.local', type: RrType.A });
  const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  const response = answer(good, CLUSTER_IP);
  for (const bad of [Buffer.from([1, 2, 3]), good.subarray(0, 20), loop, response]) {
    t.is(await udpAsk(server.port, bad, 200), undefined);
  }
  const [viaTcp] = await tcpAsk(server.port, [Buffer.from([9, 9, 9]), good], 1);
  t.deepEqual(viaTcp && ips(viaTcp), ['198.18.128.20']);
  t.deepEqual(ips(await ask(server.port, 'echo.samples.svc.cluster.local')), ['198.18.128.20']);
  t.like(server.stats(), { dropped: 5, queries: 2 });
});

test('the server never forwards to itself, and with no upstream answers SERVFAIL', async (t) => {
  const first = await startServer();
  const port = first.port;
  await first.stop();
  await using server = await startServer({ port, upstream: [`127.0.0.1:${port}`] });
  t.deepEqual(server.upstream, []);
  const r = await ask(server.port, 'www.example.test');
  t.is(readHeader(r).rcode, Rcode.servFail);
  t.like(server.stats(), { failures: 1 });
});

test('stop() is idempotent and frees the UDP and TCP port', async (t) => {
  const server = await startServer();
  const { port } = server;
  await Promise.all([server.stop(), server.stop()]);
  await server.stop();
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(port, '127.0.0.1', resolve));
  udp.close();
  const tcp: Server = createServer();
  await new Promise<void>((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  await new Promise<void>((resolve) =>
    tcp.close(() => {
      resolve();
    }),
  );
  t.pass();
});

test('a port in use and bad options are errors that name the fix', async (t) => {
  await using server = await startServer();
  const inUse = await t.throwsAsync(startServer({ port: server.port }), { instanceOf: TpError });
  t.like(inUse, { category: 'unavailable', code: 'DNS_PORT_IN_USE' });
  const bad = await t.throwsAsync(startServer({ namespace: 'Not_A_Namespace' }), {
    instanceOf: TpError,
  });
  t.like(bad, { category: 'config', code: 'DNS_CONFIG' });
  await t.throwsAsync(startServer({ upstream: ['dns.example'] }), {
    instanceOf: TpError,
    message: /not an IP address/,
  });
});
