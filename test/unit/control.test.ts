/** The daemon's control API on a real loopback port: the secret, the routes, the bodies. */
import test from 'ava';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { request } from 'undici';
import {
  ControlStream,
  MAX_CONTROL_BODY,
  type ControlRequest,
  type TarMeta,
} from '../../src/contract/control.js';
import type { SessionStatus } from '../../src/contract/session.js';
import { ControlServer, type ControlHandlers } from '../../src/daemon/control.js';
import { ControlClient } from '../../src/session/control-client.js';

const secret = 'test-secret';

const notInThisTest = (): Promise<never> => Promise.reject(new Error('not in this test'));

/** The engagement routes neither server here is about. */
const engagementStubs = {
  'POST /v1/engagements': (req) => ({ ...req, mounts: [], since: 'now', accepted: 0, refused: 0 }),
  'POST /v1/engagements/info': notInThisTest,
  'POST /v1/engagements/leave': () => ({ ended: false }),
  'POST /v1/engagements/describe': notInThisTest,
} satisfies Partial<ControlHandlers>;

const withServer = test.macro(
  async (t, body: (t: import('ava').ExecutionContext, base: string) => Promise<void>) => {
    let quits = 0;
    await using server = await ControlServer.listen(0, secret, {
      'GET /v1/status': () => ({ name: 'x' }) as SessionStatus,
      'POST /v1/quit': () => {
        quits += 1;
        return { stopping: true };
      },
      ...engagementStubs,
      'POST /v1/engagements/tar': notInThisTest,
      'POST /v1/engagements/write': notInThisTest,
    });
    await body(t, `http://127.0.0.1:${server.port}`);
    t.log(`quit called ${quits} times`);
  },
);

const call = async (
  url: string,
  method: 'GET' | 'POST',
  opts: { auth?: string; body?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> => {
  const res = await request(url, {
    method,
    headers: { authorization: opts.auth ?? `Bearer ${secret}` },
    ...(opts.body === undefined ? {} : { body: opts.body }),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
};

test('a request without the session secret is refused', withServer, async (t, base) => {
  t.is((await call(`${base}/v1/status`, 'GET', { auth: 'Bearer wrong-secret' })).status, 401);
  t.is((await call(`${base}/v1/status`, 'GET', { auth: '' })).status, 401);
});

test('a known route answers with its handler’s JSON', withServer, async (t, base) => {
  t.deepEqual(await call(`${base}/v1/status`, 'GET'), { status: 200, json: { name: 'x' } });
  t.deepEqual(await call(`${base}/v1/quit`, 'POST'), { status: 200, json: { stopping: true } });
});

test('an unknown route or method is a 404', withServer, async (t, base) => {
  t.is((await call(`${base}/v1/nope`, 'GET')).status, 404);
  t.is((await call(`${base}/v1/status`, 'POST')).status, 404);
});

test(
  'a body the route does not take, bad JSON and an oversized body are refused before the handler',
  withServer,
  async (t, base) => {
    const unwanted = await call(`${base}/v1/quit`, 'POST', { body: '{"force":true}' });
    t.is(unwanted.status, 400);
    t.regex(String(unwanted.json.error), /takes no request body/);
    t.is((await call(`${base}/v1/quit`, 'POST', { body: '{nope' })).status, 400);
    const big = 'x'.repeat(MAX_CONTROL_BODY + 1);
    t.is((await call(`${base}/v1/quit`, 'POST', { body: JSON.stringify(big) })).status, 413);
  },
);

type TarHandler = ControlHandlers['POST /v1/engagements/tar'];

/** A server whose tar route is `tar`, and a client of it, as the CLI has one. */
async function streamServer(
  tar: TarHandler,
): Promise<{ server: ControlServer; client: ControlClient }> {
  const server = await ControlServer.listen(0, secret, {
    'GET /v1/status': () => ({ name: 'x' }) as SessionStatus,
    'POST /v1/quit': () => ({ stopping: true }),
    ...engagementStubs,
    'POST /v1/engagements/tar': tar,
    'POST /v1/engagements/write': notInThisTest,
  });
  return { server, client: ControlClient.at(`http://127.0.0.1:${server.port}`, secret) };
}

test('a stream route answers with the handler’s body, its description in a header', async (t) => {
  const seen: ControlRequest<'POST /v1/engagements/tar'>[] = [];
  const meta: TarMeta = {
    // Names need not be ASCII; header values must be.
    skipped: ['clé', 'a "quoted" name'],
    size: 3,
    root: { file: false, mode: 0o777, uid: 1000, gid: 1000 },
  };
  const { server, client } = await streamServer((req) => {
    seen.push(req);
    return new ControlStream(
      Readable.from([Buffer.from('ab'), Buffer.from('c')]),
      meta,
      'application/x-tar',
    );
  });
  await using _ = server;
  const answer = await client.stream('POST /v1/engagements/tar', {
    workload: 'deployment/x',
    path: '/etc/x',
  });
  t.deepEqual(answer.meta, meta);
  t.is(answer.contentType, 'application/x-tar');
  t.is(await text(answer.body), 'abc');
  t.deepEqual(seen, [{ workload: 'deployment/x', path: '/etc/x' }]);
});

test('a stream route that fails before its body is an error for the client, not a body', async (t) => {
  const { server, client } = await streamServer(() =>
    Promise.reject(new Error('no agent of deployment/x answered')),
  );
  await using _ = server;
  const err = await t.throwsAsync(
    client.stream('POST /v1/engagements/tar', { workload: 'deployment/x', path: '/etc/x' }),
  );
  t.regex(err.message, /HTTP 500 .*no agent of deployment\/x answered/);
});

test('a stream the daemon cuts short fails the client’s read', async (t) => {
  const { server, client } = await streamServer(() => {
    const body = new Readable({ read: () => undefined });
    body.push('partial');
    setTimeout(() => body.destroy(new Error('the agent went away')), 50);
    return new ControlStream(body, { skipped: [] }, 'application/x-tar');
  });
  await using _ = server;
  const answer = await client.stream('POST /v1/engagements/tar', {
    workload: 'deployment/x',
    path: '/etc/x',
  });
  await t.throwsAsync(text(answer.body));
});

test(
  'the tar route refuses a path that is not absolute before the handler',
  withServer,
  async (t, base) => {
    for (const body of [
      '{"workload":"deployment/x","path":"etc/x"}',
      '{"workload":"deployment/x"}',
    ]) {
      const r = await call(`${base}/v1/engagements/tar`, 'POST', { body });
      t.is(r.status, 400, body);
    }
  },
);
