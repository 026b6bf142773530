import test from 'ava';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import { buildQuery } from '../../src/daemon/dns/message.js';
import { DnsServer, type DnsServerOptions } from '../../src/daemon/dns/server.js';
import { frame, unframe } from '../../src/daemon/dns/upstream.js';
import { TpError } from '../../src/lib/errors.js';

// Real UDP and TCP sockets on 127.0.0.1. The cluster side (the tunnel to the cluster's DNS) is
// a function the test fakes; upstream nameservers are small real DNS responders.

const CLUSTER_IP = [198, 18, 128, 20];
const UPSTREAM_IP = [198, 18, 200, 1];

type Decoded = dnsPacket.DecodedPacket & { rcode?: string };

const decode = (msg: Buffer): Decoded => dnsPacket.decode(msg);
const questionName = (msg: Buffer): string =>
  (decode(msg).questions?.[0]?.name ?? '').toLowerCase();

/** A response to `query` with `count` A records of `ip` (as a cluster's or upstream's DNS). */
const answer = (query: Buffer, ip: number[], count = 1, rcode = 'NOERROR'): Buffer => {
  const q = decode(query);
  const name = q.questions?.[0]?.name ?? '';
  return dnsPacket.encode({
    type: 'response',
    id: q.id ?? 0,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    rcode,
    questions: q.questions ?? [],
    answers: Array.from({ length: count }, () => ({
      type: 'A' as const,
      name,
      ttl: 30,
      data: ip.join('.'),
    })),
  } as dnsPacket.Packet);
};
const nxDomain = (query: Buffer): Buffer => answer(query, [], 0, 'NXDOMAIN');

/** A fake cluster DNS: answers the names it knows, NXDOMAIN for the rest; records what it saw. */
function fakeCluster(known: string[]): { cluster: DnsServerOptions['cluster']; asked: string[] } {
  const asked: string[] = [];
  const cluster = (query: Buffer): Promise<Buffer> => {
    const name = questionName(query);
    asked.push(name);
    return Promise.resolve(known.includes(name) ? answer(query, CLUSTER_IP) : nxDomain(query));
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
      fake.asked.push(questionName(q));
      const r = answer(q, UPSTREAM_IP, opts.truncate === true ? 0 : 1);
      if (opts.truncate === true) r.writeUInt16BE(r.readUInt16BE(2) | 0x0200, 2);
      udp.send(r, peer.port, peer.address);
    });
    tcp.on('connection', (s) => {
      s.on('data', (chunk: Buffer) => {
        for (const q of unframe(chunk).messages) {
          fake.tcpAsked.push(questionName(q));
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

async function ask(port: number, name: string, id = 0x1234, type = 'A'): Promise<Buffer> {
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

const ips = (r: Buffer): string[] =>
  (decode(r).answers ?? []).map((a) => ('data' in a && typeof a.data === 'string' ? a.data : ''));
const owners = (r: Buffer): string[] => (decode(r).answers ?? []).map((a) => a.name);
const head = (
  r: Buffer,
): { id: number; qr: boolean; tc: boolean; rcode: string; ancount: number } => {
  const d = decode(r);
  return {
    id: d.id ?? 0,
    qr: d.flag_qr,
    tc: d.flag_tc,
    rcode: d.rcode ?? '',
    ancount: d.answers?.length ?? 0,
  };
};

test('cluster names go to the cluster and keep the client id (cluster side faked)', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({ cluster: fake.cluster, upstream: [upstream.address] });
  const r = await ask(server.port, 'Echo.Samples.svc.Cluster.Local', 0xbeef);
  t.like(head(r), { id: 0xbeef, qr: true, rcode: 'NOERROR' });
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
  t.like(head(r), { id: 0x0042, rcode: 'NOERROR' });
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
  await using server = await startServer({
    cluster: fake.cluster,
    upstream: [upstream.address],
    // `store` is also a public top-level domain: a service of that name makes it the cluster's.
    knownNames: () => new Set(['samples', 'store']),
  });
  for (const name of ['echo', 'store-0.store', 'web.other']) {
    const r = await ask(server.port, name);
    t.deepEqual(ips(r), ['198.18.128.20'], name);
    t.deepEqual(owners(r), [name]);
    t.is(questionName(r), name);
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

test('reverse names of cluster addresses go to the cluster, others and zones upstream (cluster side faked)', async (t) => {
  const fake = fakeCluster(['20.128.18.198.in-addr.arpa']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({
    cluster: fake.cluster,
    upstream: [upstream.address],
    isClusterAddress: (ip) => ip.startsWith('198.18.'),
  });
  await ask(server.port, '20.128.18.198.in-addr.arpa', 1, 'PTR');
  await ask(server.port, '1.0.19.198.in-addr.arpa', 2, 'PTR');
  await ask(server.port, '128.18.198.in-addr.arpa', 3, 'SOA');
  t.deepEqual(fake.asked, ['20.128.18.198.in-addr.arpa']);
  t.deepEqual(upstream.asked, ['1.0.19.198.in-addr.arpa', '128.18.198.in-addr.arpa']);
});

test('a query that came over TCP is asked of the cluster over TCP and answered whole (cluster side faked)', async (t) => {
  const transports: string[] = [];
  const cluster: DnsServerOptions['cluster'] = (q, transport) => {
    transports.push(transport);
    // As CoreDNS does: a UDP answer is cut to what the query allows, a TCP answer is not.
    return Promise.resolve(
      transport === 'tcp' ? answer(q, CLUSTER_IP, 100) : answer(q, CLUSTER_IP, 29),
    );
  };
  await using server = await startServer({ cluster });
  const name = 'many.samples.svc.cluster.local';
  const [tcp] = await tcpAsk(server.port, [buildQuery({ id: 9, name, type: 'A' })]);
  t.is(tcp && ips(tcp).length, 100);
  t.is(tcp && head(tcp).id, 9);
  await ask(server.port, name, 10);
  t.deepEqual(transports, ['tcp', 'udp']);
});

test('a public two-label name goes straight upstream and never waits for the cluster (cluster side faked)', async (t) => {
  const fake = fakeCluster(['api.dev.svc.cluster.local']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  const slowCluster: DnsServerOptions['cluster'] = async (q, transport) => {
    await new Promise((r) => setTimeout(r, 1500));
    return fake.cluster(q, transport);
  };
  await using server = await startServer({
    cluster: slowCluster,
    upstream: [upstream.address],
    knownNames: () => new Set(['samples', 'dev']),
  });
  const started = Date.now();
  t.deepEqual(ips(await ask(server.port, 'example.com')), ['198.18.200.1']);
  t.true(Date.now() - started < 500, `${Date.now() - started} ms`);
  t.deepEqual(fake.asked, []);
  // A namespace named like a top-level domain is still the cluster's.
  t.deepEqual(ips(await ask(server.port, 'api.dev')), ['198.18.128.20']);
  t.true(fake.asked.includes('api.dev.svc.cluster.local'));
});

test('TCP carries several queries on one connection, each with its id', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  const upstream = await fakeUpstream();
  t.teardown(() => upstream.close());
  await using server = await startServer({ cluster: fake.cluster, upstream: [upstream.address] });
  const answers = await tcpAsk(server.port, [
    buildQuery({ id: 11, name: 'echo.samples.svc.cluster.local', type: 'A' }),
    buildQuery({ id: 12, name: 'www.example.test', type: 'A' }),
  ]);
  const byId = new Map(answers.map((r) => [head(r).id, ips(r)]));
  t.deepEqual(byId.get(11), ['198.18.128.20']);
  t.deepEqual(byId.get(12), ['198.18.200.1']);
});

test('a truncated UDP answer from the upstream is asked again over TCP', async (t) => {
  const upstream = await fakeUpstream({ truncate: true });
  t.teardown(() => upstream.close());
  await using server = await startServer({ upstream: [upstream.address] });
  const r = await ask(server.port, 'big.example.test', 0x7777);
  t.like(head(r), { id: 0x7777, tc: false, rcode: 'NOERROR' });
  t.deepEqual(ips(r), ['198.18.200.1', '198.18.200.1']);
  t.deepEqual(upstream.asked, ['big.example.test']);
  t.deepEqual(upstream.tcpAsked, ['big.example.test']);
});

test('an answer too big for the client is sent truncated over UDP and whole over TCP (cluster side faked)', async (t) => {
  const cluster = (q: Buffer): Promise<Buffer> => Promise.resolve(answer(q, CLUSTER_IP, 40));
  await using server = await startServer({ cluster });
  const name = 'many.samples.svc.cluster.local';
  const udp = await ask(server.port, name, 5);
  t.like(head(udp), { id: 5, tc: true, ancount: 0 });
  const [tcp] = await tcpAsk(server.port, [buildQuery({ id: 6, name, type: 'A' })]);
  t.is(tcp && ips(tcp).length, 40);
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
  t.like(head(r), { id: 0x99, rcode: 'SERVFAIL' });
  t.true(elapsed >= 250 && elapsed < 1500, `${elapsed} ms`);

  const failing = (): Promise<Buffer> => Promise.reject(new Error('tunnel down'));
  await using other = await startServer({ cluster: failing });
  const r2 = await ask(other.port, 'echo.samples.svc.cluster.local');
  t.is(head(r2).rcode, 'SERVFAIL');
  t.like(other.stats(), { failures: 1 });
});

test('malformed packets are dropped and the server keeps answering (cluster side faked)', async (t) => {
  const fake = fakeCluster(['echo.samples.svc.cluster.local']);
  await using server = await startServer({ cluster: fake.cluster });
  const good = buildQuery({ id: 1, name: 'echo.samples.svc.cluster.local', type: 'A' });
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
  t.is(head(r).rcode, 'SERVFAIL');
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
