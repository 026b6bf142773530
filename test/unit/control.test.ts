/** The daemon's control API on a real loopback port: the secret, the routes, the bodies. */
import test from 'ava';
import { request } from 'undici';
import { MAX_CONTROL_BODY } from '../../src/contract/control.js';
import type { SessionStatus } from '../../src/contract/session.js';
import { ControlServer } from '../../src/daemon/control.js';

const secret = 'test-secret';

const withServer = test.macro(
  async (t, body: (t: import('ava').ExecutionContext, base: string) => Promise<void>) => {
    let quits = 0;
    await using server = await ControlServer.listen(0, secret, {
      'GET /v1/status': () => ({ name: 'x' }) as SessionStatus,
      'POST /v1/quit': () => {
        quits += 1;
        return { stopping: true };
      },
      'POST /v1/engagements': (req) => ({ ...req, since: 'now', accepted: 0, refused: 0 }),
      'POST /v1/engagements/info': () => Promise.reject(new Error('not in this test')),
      'POST /v1/engagements/leave': () => ({ ended: false }),
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
