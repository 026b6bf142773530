/**
 * Heartbeats: the grace setting, the tunnel op, and a daemon's pool telling the real
 * tp-manager on loopback that its session is alive.
 */
import test from 'ava';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { startManager } from '../../agent/manager.js';
import { graceFromEnv, startHeartbeats } from '../../src/daemon/heartbeat.js';
import { TunnelPool } from '../../src/daemon/tunnel-pool.js';
import { TpError } from '../../src/lib/errors.js';
import { heartbeatIntervalMs, parseDurationSeconds, parseGrace } from '../../src/lib/grace.js';
import { settingsFromEnv } from '../../src/session/config.js';
import { parseRequest, type HeartbeatRequest } from '../../src/tunnel/protocol.js';

test('a duration is seconds or Go’s syntax', (t) => {
  t.is(parseDurationSeconds('300'), 300);
  t.is(parseDurationSeconds('5m'), 300);
  t.is(parseDurationSeconds('30s'), 30);
  t.is(parseDurationSeconds('1h30m'), 5400);
  t.is(parseDurationSeconds('1.5m'), 90);
  t.is(parseDurationSeconds('2500ms'), 2.5);
  for (const bad of ['', '5 m', '-5s', '5d', 'm', '5m3', 'ten']) {
    t.is(parseDurationSeconds(bad), undefined, bad);
  }
});

test('a grace is whole seconds, between 3 s and a week', (t) => {
  t.deepEqual(parseGrace('8s'), { seconds: 8 });
  t.deepEqual(parseGrace('2500ms'), { error: '2500ms is under 3 s' });
  t.deepEqual(parseGrace('3.2s'), { seconds: 4 });
  t.deepEqual(parseGrace('169h'), { error: '169h is over a week' });
  t.true('error' in parseGrace('soon'));
});

test('TP_ENGAGEMENT_GRACE sets the grace; unset, it is 5 minutes; wrong, it is a config error', (t) => {
  t.is(settingsFromEnv({}).engagementGraceSeconds, 300);
  t.is(settingsFromEnv({ TP_ENGAGEMENT_GRACE: ' 8s ' }).engagementGraceSeconds, 8);
  t.is(settingsFromEnv({ TP_ENGAGEMENT_GRACE: '600' }).engagementGraceSeconds, 600);
  const err = t.throws(() => settingsFromEnv({ TP_ENGAGEMENT_GRACE: '5 minutes' }), {
    instanceOf: TpError,
  });
  t.like(err, { code: 'ENGAGEMENT_GRACE_INVALID', category: 'config' });
  t.regex(err.message, /TP_ENGAGEMENT_GRACE/);
  t.regex(err.fix, /5m/);
});

test('the daemon reads the grace connect gave it, and sends heartbeats often enough for it', (t) => {
  t.is(graceFromEnv({ TP_ENGAGEMENT_GRACE: '8' }), 8);
  t.is(graceFromEnv({}), 300);
  t.is(graceFromEnv({ TP_ENGAGEMENT_GRACE: 'nonsense' }), 300);
  t.is(heartbeatIntervalMs(300), 30_000);
  t.is(heartbeatIntervalMs(3600), 30_000);
  t.is(heartbeatIntervalMs(9), 3000);
  t.is(heartbeatIntervalMs(3), 1000);
});

test('the heartbeat op names the session and may carry its grace', (t) => {
  t.deepEqual(parseRequest('{"v":1,"op":"heartbeat","session":"tp-lab-samples","grace":8}'), {
    v: 1,
    op: 'heartbeat',
    session: 'tp-lab-samples',
    grace: 8,
  });
  t.deepEqual(parseRequest('{"v":1,"op":"heartbeat","session":"s"}'), {
    v: 1,
    op: 'heartbeat',
    session: 's',
  });
  for (const bad of [
    '{"v":1,"op":"heartbeat"}',
    '{"v":1,"op":"heartbeat","session":""}',
    '{"v":1,"op":"heartbeat","session":"a b"}',
    '{"v":1,"op":"heartbeat","session":"s","grace":0}',
    '{"v":1,"op":"heartbeat","session":"s","grace":"8"}',
    '{"v":2,"op":"heartbeat","session":"s"}',
  ]) {
    t.throws(() => parseRequest(bad), undefined, bad);
  }
});

test('a pool’s heartbeat reaches the manager, which answers and reports it', async (t) => {
  const heard: HeartbeatRequest[] = [];
  const manager = await startManager({ port: 0, onHeartbeat: (req) => heard.push(req) });
  const pool = new TunnelPool({
    size: 1,
    open: () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: manager.port, allowHalfOpen: true }, () => {
          resolve(s);
        });
        s.once('error', reject);
      }),
  });
  t.teardown(async () => {
    await pool.stop();
    await manager.stop();
  });
  await pool.start();
  await pool.heartbeat('tp-lab-samples', 8);
  await pool.heartbeat('tp-lab-samples', 8);
  t.deepEqual(heard, [
    { v: 1, op: 'heartbeat', session: 'tp-lab-samples', grace: 8 },
    { v: 1, op: 'heartbeat', session: 'tp-lab-samples', grace: 8 },
  ]);
  t.like(await pool.info(), { stats: { heartbeats: 2 } });
});

test('a manager that does not know heartbeats (an older tp) makes the heartbeat fail, saying why', async (t) => {
  const old = createServer((s) => {
    s.once('data', () => {
      s.end('{"ok":false,"error":"bad-request","message":"Error: unknown op heartbeat"}\n');
    });
  });
  await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
  const port = (old.address() as AddressInfo).port;
  const pool = new TunnelPool({
    size: 0,
    open: () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port }, () => {
          resolve(s);
        });
        s.once('error', reject);
      }),
  });
  t.teardown(async () => {
    await pool.stop();
    old.close();
  });
  await t.throwsAsync(pool.heartbeat('s', 8), { message: /refused the heartbeat: .*unknown op/ });
  await pool.stop();
  await t.throwsAsync(pool.heartbeat('s', 8), { message: /stopped/ });
});

test('heartbeats go out at once and then every interval; a failure is logged when it starts and ends', async (t) => {
  let sent = 0;
  let failing = true;
  const logs: { msg?: string }[] = [];
  const beats = startHeartbeats({
    send: () => {
      sent += 1;
      return failing ? Promise.reject(new Error('no manager')) : Promise.resolve();
    },
    grace: 3,
    log: (o) => logs.push(o),
  });
  t.teardown(() => {
    beats.stop();
  });
  t.is(sent, 1);
  await new Promise((r) => setTimeout(r, 2200));
  t.is(sent, 3);
  failing = false;
  await new Promise((r) => setTimeout(r, 1000));
  t.deepEqual(
    logs.map((l) => l.msg),
    ['heartbeats', 'heartbeat failed', 'heartbeats reach tp-manager again'],
  );
});
