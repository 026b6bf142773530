/**
 * The agent's proxied port with real clients (curl, undici's WebSocket, Node's HTTP/2 client)
 * on loopback: an "app" server stands where the app listens, a "local" one where the
 * session's local container would, and the daemon's own Engagements taps the agent. The
 * cluster tier runs the same paths through a Service (test/e2e/intercept.test.ts).
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { connect as h2connect, createServer as h2server, type Http2Server } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WebSocketServer } from 'ws';
import { WebSocket } from 'undici';
import type { HttpFilter } from '../../src/contract/agent.js';
import { Engagements } from '../../src/daemon/engagements.js';
import { dial, listen, loopbackAgent } from './agent-fixture.js';

const run = promisify(execFile);

/** An HTTP/1.1 + h2c server that answers who it is, what it got, and the body's hash. */
function whoServer(who: string): { h1: Server; h2: Http2Server } {
  const answer = (
    req: IncomingMessage,
    send: (status: number, body: string, trailers?: Record<string, string>) => void,
  ): void => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    req.on('end', () => {
      send(
        200,
        JSON.stringify({
          who,
          path: req.url,
          headers: req.rawHeaders,
          bytes,
          sha: hash.digest('hex'),
          trailers: req.rawTrailers,
        }),
        { 'x-body-sha256': 'seen' },
      );
    });
  };
  const h1 = createServer((req, res) => {
    if (req.url?.startsWith('/sse') === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const t = setInterval(() => {
        i += 1;
        res.write(`data: ${who} ${i}\n\n`);
        if (i === 3) {
          clearInterval(t);
          res.end();
        }
      }, 100);
      return;
    }
    answer(req, (status, body, trailers) => {
      res.writeHead(status, {
        'x-served-by': who,
        trailer: 'x-body-sha256',
        'content-type': 'application/json',
      });
      res.addTrailers(trailers ?? {});
      res.end(body);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  h1.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ who, user: req.headers['x-user'] }));
      ws.on('message', (m, binary) => {
        ws.send(m, { binary });
      });
    });
  });
  const h2 = h2server();
  h2.on('stream', (stream, headers) => {
    if (headers['x-fail'] !== undefined) {
      // A gRPC-style trailers-only answer: status and all in one HEADERS frame.
      stream.respond(
        { ':status': 200, 'grpc-status': '5', 'x-served-by': who },
        { endStream: true },
      );
      return;
    }
    stream.respond({ ':status': 200, 'x-served-by': who }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      stream.sendTrailers({ 'grpc-status': '0', 'x-who': who });
    });
    stream.resume();
    stream.on('end', () => stream.end(JSON.stringify({ who, path: headers[':path'] })));
  });
  return { h1, h2 };
}

interface Rig {
  proxy: number;
  stopLocal(): Promise<void>;
  appPort: number;
  localPort: number;
  engagements: Engagements;
  stop(): Promise<void>;
}

/** The app and the local server speak HTTP/1.1 on one port and h2c on another. */
async function rig(
  t: ExecutionContext,
  mode: 'intercept' | 'wiretap',
  filter: HttpFilter | undefined,
  opts: { h2?: boolean; session?: string } = {},
): Promise<Rig> {
  const app = whoServer('app');
  const local = whoServer('local');
  const appPort = await listen(opts.h2 === true ? app.h2 : app.h1);
  const localPort = await listen(opts.h2 === true ? local.h2 : local.h1);
  // Port 0: the system's choice, so that no other test's socket can take it meanwhile.
  const agent = await loopbackAgent(
    { proxies: [{ listen: 0, target: appPort }] },
    { tapSilenceMs: 1500 },
  );
  const proxy = agent.proxied.get(appPort) ?? 0;
  const engagements = new Engagements(
    (_ns, _pod) => dial(agent.port),
    () => undefined,
    opts.session ?? 'alice',
  );
  await engagements.start({
    workload: 'deployment/web',
    namespace: 'ns',
    mode,
    container: 'web',
    pods: ['web-1'],
    ports: [{ port: appPort, protocol: 'TCP', local: localPort }],
    tap: { target: appPort, ...(filter === undefined ? {} : { filter }) },
  });
  const stop = async (): Promise<void> => {
    await engagements.stop();
    await agent.stop();
    for (const s of [app.h1, app.h2, local.h1, local.h2]) {
      if (s.listening) {
        if ('closeAllConnections' in s) s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    }
  };
  t.teardown(stop);
  // Until the agent has the tap, everything still goes to the app.
  for (let i = 0; i < 100; i += 1) {
    if ((engagements.status()[0]?.taken ?? -1) >= 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 100));
  const stopLocal = async (): Promise<void> => {
    for (const s of [local.h1, local.h2]) {
      if (!s.listening) continue;
      if ('closeAllConnections' in s) s.closeAllConnections();
      await new Promise((res) => s.close(res));
    }
  };
  return { proxy, appPort, localPort, engagements, stop, stopLocal };
}

async function curl(...args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '--max-time', '20', ...args], {
    maxBuffer: 1 << 26,
  });
  return stdout;
}

const whos = (out: string): string[] => [...out.matchAll(/"who":"(\w+)"/g)].map((m) => m[1] ?? '');

const alice: HttpFilter = { headers: [{ name: 'x-user', value: 'alice' }], pathPrefixes: [] };

test('keep-alive requests on one connection go each its own way, by header', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const url = `http://127.0.0.1:${r.proxy}/`;
  const out = await curl(
    '-v',
    url,
    '-H',
    'x-user: alice',
    '--next',
    url,
    '--next',
    '-H',
    'x-user: alice',
    url,
  );
  t.deepEqual(whos(out), ['local', 'app', 'local']);
});

test('headers reach the app exactly as the client sent them: case, order and duplicates', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const out = await curl(
    `http://127.0.0.1:${r.proxy}/x`,
    '-H',
    'X-Mixed-Case: 1',
    '-H',
    'x-dup: a',
    '-H',
    'x-dup: b',
  );
  const seen = JSON.parse(out) as { who: string; headers: string[] };
  t.is(seen.who, 'app');
  t.deepEqual(seen.headers.slice(0, 2), ['Host', `127.0.0.1:${r.proxy}`]);
  const i = seen.headers.indexOf('X-Mixed-Case');
  t.deepEqual(seen.headers.slice(i, i + 6), ['X-Mixed-Case', '1', 'x-dup', 'a', 'x-dup', 'b']);
});

test('a request whose framing is ambiguous gets a 400 and reaches neither side', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const socket = await dial(r.proxy);
  socket.end(
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  );
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (answer += d));
  await new Promise((res) => socket.once('close', res));
  t.regex(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.is(r.engagements.status()[0]?.taken, 0);
});

test('a path-prefix intercept takes only paths below it', async (t) => {
  const r = await rig(t, 'intercept', { headers: [], pathPrefixes: ['/api/', '/v2'] });
  const base = `http://127.0.0.1:${r.proxy}`;
  const out = await curl(`${base}/api/x`, `${base}/other`, `${base}/v2?q=1`);
  t.deepEqual(whos(out), ['local', 'app', 'local']);
});

test('a 100 MB chunked upload arrives byte-exact on either side', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const dir = mkdtempSync(join(tmpdir(), 'tp-upload-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'body');
  const data = randomBytes(100 * 1024 * 1024);
  writeFileSync(file, data);
  const sha = createHash('sha256').update(data).digest('hex');
  for (const [user, who] of [
    ['alice', 'local'],
    ['bob', 'app'],
  ] as const) {
    const out = await curl(
      `http://127.0.0.1:${r.proxy}/upload`,
      '-H',
      `x-user: ${user}`,
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${file}`,
    );
    const seen = JSON.parse(out) as { who: string; bytes: number; sha: string };
    t.deepEqual([seen.who, seen.bytes, seen.sha], [who, data.length, sha]);
  }
});

test('request and response trailers pass through', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const answer = await new Promise<{ body: string; trailers: Record<string, string | undefined> }>(
    (resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: r.proxy,
          method: 'POST',
          path: '/t',
          headers: { 'x-user': 'alice', trailer: 'x-req-sum' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            resolve({ body, trailers: res.trailers });
          });
        },
      );
      req.on('error', reject);
      req.write('hello');
      req.addTrailers({ 'x-req-sum': '42' });
      req.end();
    },
  );
  const seen = JSON.parse(answer.body) as { who: string; trailers: string[] };
  t.is(seen.who, 'local');
  t.deepEqual(seen.trailers, ['x-req-sum', '42']);
  t.is(answer.trailers['x-body-sha256'], 'seen');
});

test('server-sent events stream through as they are sent', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const started = Date.now();
  const times: number[] = [];
  await new Promise<void>((resolve, reject) => {
    request(
      { host: '127.0.0.1', port: r.proxy, path: '/sse', headers: { 'x-user': 'alice' } },
      (res) => {
        res.on('data', () => times.push(Date.now() - started));
        res.on('end', resolve);
      },
    )
      .on('error', reject)
      .end();
  });
  t.is(times.length, 3);
  // Each event arrives when it is sent, not all at the end.
  t.true((times[2] ?? 0) - (times[0] ?? 0) >= 150);
});

test("a browser's WebSocket is upgraded where its request goes, and stays two-way", async (t) => {
  const r = await rig(t, 'intercept', { headers: [], pathPrefixes: ['/ws'] });
  for (const [path, who] of [
    ['/ws', 'local'],
    ['/chat', 'app'],
  ] as const) {
    const ws = new WebSocket(`ws://127.0.0.1:${r.proxy}${path}`);
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('message', (e) => {
        messages.push(String(e.data));
        if (messages.length === 1) ws.send('ping');
        else ws.close();
      });
      ws.addEventListener('close', () => {
        resolve();
      });
      ws.addEventListener('error', () => {
        reject(new Error('websocket error'));
      });
    });
    t.is((JSON.parse(messages[0] ?? '{}') as { who: string }).who, who);
    t.is(messages[1], 'ping');
  }
});

test('h2c streams on one connection go each their own way, with trailers and trailers-only answers', async (t) => {
  const r = await rig(t, 'intercept', alice, { h2: true });
  const session = h2connect(`http://127.0.0.1:${r.proxy}`);
  session.on('error', (err) => {
    t.log(`session error: ${String(err)}`);
  });
  t.teardown(() => {
    session.close();
  });
  const call = (
    headers: Record<string, string>,
  ): Promise<{ body: string; status: unknown; trailers: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/tp.lab.Echo/Who', ...headers });
      let body = '';
      let trailers: Record<string, unknown> = {};
      let status: unknown;
      s.on('response', (h) => {
        status = h['grpc-status'] ?? h[':status'];
      });
      s.on('trailers', (tr: Record<string, unknown>) => {
        trailers = tr;
      });
      s.setEncoding('utf8');
      s.on('data', (d: string) => (body += d));
      s.on('end', () => {
        resolve({ body, status, trailers });
      });
      s.on('error', reject);
      s.end('x');
    });
  const [mine, theirs, failed] = await Promise.all([
    call({ 'x-user': 'alice' }),
    call({ 'x-user': 'bob' }),
    call({ 'x-user': 'alice', 'x-fail': '1' }),
  ]);
  t.is((JSON.parse(mine.body) as { who: string }).who, 'local');
  t.is(mine.trailers['grpc-status'], '0');
  t.is(mine.trailers['x-who'], 'local');
  t.is((JSON.parse(theirs.body) as { who: string }).who, 'app');
  t.is(failed.status, '5');
});

test('curl with h2c prior knowledge is routed by header too', async (t) => {
  const r = await rig(t, 'intercept', alice, { h2: true });
  const url = `http://127.0.0.1:${r.proxy}/p`;
  // One request per curl: curl 7.88 fails to reuse a prior-knowledge connection to any Node
  // HTTP/2 server (the app's own too); the Node client above multiplexes instead.
  const mine = await curl('--http2-prior-knowledge', url, '-H', 'x-user: alice');
  const theirs = await curl('--http2-prior-knowledge', url);
  t.deepEqual([...whos(mine), ...whos(theirs)], ['local', 'app']);
});

test('an intercept without a filter takes whole TCP connections, whatever they speak', async (t) => {
  const r = await rig(t, 'intercept', undefined);
  const out = await curl(`http://127.0.0.1:${r.proxy}/a`, '-H', 'x-user: bob');
  t.deepEqual(whos(out), ['local']);
  t.is(r.engagements.status()[0]?.accepted, 1);
});

test('a wiretap gets a copy of each matching request while the app answers it', async (t) => {
  const r = await rig(t, 'wiretap', alice);
  const out = await curl(`http://127.0.0.1:${r.proxy}/a`, '-H', 'x-user: alice', '-d', 'body');
  t.deepEqual(whos(out), ['app']);
  t.deepEqual(whos(await curl(`http://127.0.0.1:${r.proxy}/b`)), ['app']);
  await waitFor(() => (r.engagements.status()[0]?.accepted ?? 0) >= 1);
  t.is(r.engagements.status()[0]?.accepted, 1);
  await waitFor(() => (r.engagements.status()[0]?.taken ?? 0) >= 1);
  t.is(r.engagements.status()[0]?.taken, 1);
});

test('copies of requests whose clients close each connection still share a few connections', async (t) => {
  const r = await rig(t, 'wiretap', alice);
  for (let i = 0; i < 20; i += 1) {
    const out = await post(r.proxy, { 'x-user': 'alice', connection: 'close' }, 'body');
    t.deepEqual(whos(out), ['app']);
  }
  await waitFor(() => (r.engagements.status()[0]?.taken ?? 0) >= 20);
  const status = r.engagements.status()[0];
  t.is(status?.taken, 20);
  t.is(status?.dropped, 0);
  // Each connection to the session costs the daemon a port-forward stream in a cluster.
  t.true((status?.accepted ?? 99) <= 8, `${status?.accepted} connections`);
});

test('a stopped local side never slows the app: its copies are dropped and counted', async (t) => {
  const r = await rig(t, 'wiretap', alice);
  await r.stopLocal();
  const started = Date.now();
  for (let i = 0; i < 5; i += 1) {
    t.deepEqual(whos(await curl(`http://127.0.0.1:${r.proxy}/`, '-H', 'x-user: alice')), ['app']);
  }
  t.true(Date.now() - started < 3000, 'answered at once');
  await waitFor(() => (r.engagements.status()[0]?.dropped ?? 0) >= 5);
  t.is(r.engagements.status()[0]?.dropped, 5);
});

test('a local side that never answers never slows the app: copies beyond the queue are dropped', async (t) => {
  const r = await rig(t, 'wiretap', alice);
  await r.stopLocal();
  // Accepts and reads nothing: every copy waits, as behind a breakpoint.
  const stuck = createNetServer((s) => {
    s.on('error', () => undefined);
  });
  await new Promise<void>((res) => stuck.listen(r.localPort, '127.0.0.1', res));
  t.teardown(() => {
    stuck.close();
  });
  const started = Date.now();
  // 100 requests, 10 at a time, from Node's own client: curl processes by the hundred would
  // starve the other tests of this file on a small machine.
  const answers: string[] = [];
  for (let batch = 0; batch < 10; batch += 1) {
    answers.push(
      ...(await Promise.all(
        Array.from({ length: 10 }, () => post(r.proxy, { 'x-user': 'alice' }, 'x'.repeat(1000))),
      )),
    );
  }
  t.true(answers.every((a) => whos(a)[0] === 'app'));
  t.true(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  await waitFor(() => (r.engagements.status()[0]?.dropped ?? 0) >= 20);
  t.true((r.engagements.status()[0]?.dropped ?? 0) >= 20);
});

test('when the session goes silent its intercept ends and the app gets its traffic back', async (t) => {
  const r = await rig(t, 'intercept', alice);
  const url = `http://127.0.0.1:${r.proxy}/`;
  t.deepEqual(whos(await curl(url, '-H', 'x-user: alice')), ['local']);
  await r.engagements.stop();
  t.deepEqual(whos(await curl(url, '-H', 'x-user: alice')), ['app']);
});

function post(port: number, headers: Record<string, string>, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', headers, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          resolve(text);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(ok: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}
