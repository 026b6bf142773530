/**
 * tp intercept and tp wiretap (issue 11) against the lab, in namespaces of this file's own:
 * two sessions intercept one Service by header at once, real clients (curl, grpcurl, a
 * WebSocket client) reach the Service through a session's tunnel as a pod would, and each
 * workload and Service is exactly as before once the last session leaves. Serial: the tests
 * share the sessions and the workloads.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { EngageResult, LeaveResult } from '../../src/engage/engage.js';
import type { ConnectResult } from '../../src/session/connect.js';
import type { ListResult } from '../../src/session/list.js';
import type { StatusReport } from '../../src/session/status.js';
import { LABEL_SESSION, tpLabels } from '../../src/lib/labels.js';
import { clientVersion } from '../../src/lib/package-info.js';
import { namespaceSession, until, workloadSpec } from '../helpers/engage.js';
import { daemonImageRef, engine } from '../helpers/docker.js';
import { context, kubectl, kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab } from '../helpers/session.js';

const run = promisify(execFile);
const hex = randomBytes(3).toString('hex');
const ns = `tp-e2e-icpt-${hex}`;
const strictNs = `tp-e2e-icpt-strict-${hex}`;
const a = sessionName('icpt-a');
const b = sessionName('icpt-b');
const c = sessionName('icpt-c');
const d = sessionName('icpt-d');
const daemons: Record<string, string> = {};

const restricted = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
};

function deployment(
  namespace: string,
  name: string,
  container: Record<string, unknown>,
  podSecurity?: Record<string, unknown>,
): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels: { app: name }, annotations: { team: 'e2e' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          // Long enough for kube-proxy to stop sending a deleted pod connections (the samples
          // do not stop on SIGTERM): a rollout's old pods then lose no request.
          terminationGracePeriodSeconds: 5,
          ...(podSecurity === undefined ? {} : { securityContext: podSecurity }),
          containers: [{ name, image: samplesImage(), ...container }],
        },
      },
    },
  };
}

const service = (namespace: string, name: string, spec: Record<string, unknown>): object => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, annotations: { team: 'e2e' } },
  spec: { selector: { app: name }, ...spec },
});

const who = { name: 'WHO', value: 'cluster' };

const manifest = (): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      deployment(ns, 'web', {
        args: ['web', '-listen', ':8080'],
        env: [who],
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
      }),
      service(ns, 'web', { ports: [{ name: 'http', port: 80, targetPort: 'http' }] }),
      deployment(ns, 'grpc', {
        args: ['grpc', '-listen', ':9090'],
        env: [who],
        ports: [{ name: 'grpc', containerPort: 9090 }],
        readinessProbe: { tcpSocket: { port: 9090 }, periodSeconds: 1 },
      }),
      service(ns, 'grpc', {
        ports: [{ port: 9090, targetPort: 9090, appProtocol: 'kubernetes.io/h2c' }],
      }),
      deployment(ns, 'raw', {
        args: ['tcp-echo', '-listen', ':9000'],
        ports: [{ name: 'echo', containerPort: 9000 }],
      }),
      service(ns, 'raw', { ports: [{ name: 'tcp', port: 9000, targetPort: 'echo' }] }),
      deployment(ns, 'lonely', {
        args: ['web', '-listen', ':8080'],
        ports: [{ containerPort: 8080 }],
      }),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'elsewhere', namespace: ns },
        spec: { selector: { app: 'nothing' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    ],
  });

const lab = namespaceSession({
  namespace: ns,
  session: a,
  manifest,
  rollouts: ['deploy/web', 'deploy/grpc', 'deploy/raw', 'deploy/lonely'],
});

/** A server in a session's namespace, where intercepted traffic arrives: the local side. */
async function localServer(session: string, args: string[], whoIs: string): Promise<void> {
  const labels = Object.entries(tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: session }));
  await run('docker', [
    'run',
    '-d',
    ...labels.flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    '--network',
    `container:${daemons[session] ?? ''}`,
    '-e',
    `WHO=${whoIs}`,
    samplesImage(),
    ...args,
  ]);
}

async function connect(
  session: string,
  namespace: string,
  env: NodeJS.ProcessEnv = {},
): Promise<void> {
  const r = await tpLab(['connect', '--docker', '-n', namespace, '--name', session, '--json'], env);
  if (r.exitCode !== 0) throw new Error(`connect of ${session} failed: ${r.stdout} ${r.stderr}`);
  daemons[session] = json<ConnectResult>(r).container;
}

test.before(async () => {
  daemons[a] = (await lab.setUp()).container;
  await connect(b, ns);
  for (const [s, w] of [
    [a, 'local-a'],
    [b, 'local-b'],
  ] as const) {
    await localServer(s, ['web', '-listen', ':8080'], w);
    await localServer(s, ['grpc', '-listen', ':9090'], w);
  }
});

test.after.always(async () => {
  for (const s of [b, c, d]) {
    await tpLab(['quit', '--name', s]);
    await engine.removeLabelled({ [LABEL_SESSION]: s });
  }
  await lab.tearDown();
  await kubectl(['delete', 'namespace', strictNs, '--ignore-not-found', '--wait=false']);
});

/** What a command printed: with --json, its error is JSON on stdout. */
const said = (r: { stdout: string; stderr: string }): string => r.stdout + r.stderr;

const tpAs = (
  session: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): ReturnType<typeof tpLab> => tpLab([...args, '--use', session, '--json'], env);

/** curl in a session's namespace: a client in the cluster, as a pod would be. */
async function curlFrom(session: string, args: string[]): Promise<string> {
  const r = await tpLab(['curl', '-sS', '--max-time', '20', ...args], { TP_SESSION: session });
  if (r.exitCode !== 0) throw new Error(`curl exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

const whos = (out: string): string[] =>
  [...out.matchAll(/"who":\s*"([\w-]+)"/g)].map((m) => m[1] ?? '');

/** The Service as its user sees it: spec and annotations, less what the API server keeps. */
async function serviceSpec(namespace: string, name: string): Promise<unknown> {
  const s = JSON.parse(
    await kubectlOk(['-n', namespace, 'get', 'service', name, '-o', 'json']),
  ) as {
    metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
    spec: unknown;
  };
  return { annotations: s.metadata.annotations, labels: s.metadata.labels, spec: s.spec };
}

test.serial(
  'two sessions intercept one Service by header; the rest reaches the app, keep-alive or not',
  async (t) => {
    const before = { web: await workloadSpec(ns, 'deploy/web'), svc: await serviceSpec(ns, 'web') };
    const ra = await tpAs(a, ['intercept', 'web', '--http-header', 'x-user=alice']);
    t.is(ra.exitCode, 0, ra.stderr);
    const engaged = json<EngageResult>(ra);
    t.is(engaged.tap?.service, 'web');
    t.deepEqual(engaged.tap?.filter, {
      headers: [{ name: 'x-user', value: 'alice' }],
      pathPrefixes: [],
    });
    const rb = await tpAs(b, ['intercept', 'web', '--http-header', 'x-user=bob']);
    t.is(rb.exitCode, 0, rb.stderr);

    // One connection, three requests, three ways.
    const url = `http://web.${ns}/`;
    const out = await until(
      'both intercepts',
      async () => {
        const o = await curlFrom(a, [
          url,
          '-H',
          'x-user: alice',
          '--next',
          url,
          '--next',
          '-H',
          'x-user: bob',
          url,
        ]);
        return whos(o).join() === 'local-a,cluster,local-b' ? o : undefined;
      },
      15_000,
    );
    t.deepEqual(whos(out), ['local-a', 'cluster', 'local-b']);
    // From the other session too: what matters is the request, not who sends it.
    t.deepEqual(whos(await curlFrom(b, [url, '-H', 'x-user: alice'])), ['local-a']);

    // A second intercept with the same filter names who holds it, and changes nothing.
    await connect(c, ns);
    const same = await tpAs(c, ['intercept', 'web', '--http-header', 'X-User=alice']);
    t.is(same.exitCode, 5);
    t.regex(said(same), new RegExp(`session ${a}.*same filter`));
    const replace = await tpAs(c, ['replace', 'web']);
    t.not(replace.exitCode, 0);
    t.regex(said(replace), /intercept/);

    // Leaving one keeps the other; leaving both restores the Deployment and the Service exactly.
    t.true(json<LeaveResult>(await tpAs(b, ['leave', 'web'])).left);
    t.deepEqual(whos(await curlFrom(a, [url, '-H', 'x-user: bob'])), ['cluster']);
    t.deepEqual(whos(await curlFrom(a, [url, '-H', 'x-user: alice'])), ['local-a']);
    t.true(json<LeaveResult>(await tpAs(a, ['leave', 'web'])).restored);
    t.deepEqual(await workloadSpec(ns, 'deploy/web'), before.web);
    t.deepEqual(await serviceSpec(ns, 'web'), before.svc);
    // kube-proxy follows the restored Service and the rollout in its own time.
    const after = await until(
      'the app',
      async () => whos(await curlFrom(a, [url, '-H', 'x-user: alice']))[0],
      15_000,
    );
    t.is(after, 'cluster');
  },
);

test.serial(
  'tp status and tp list show each intercept and its filters, as text and JSON',
  async (t) => {
    t.is(
      (
        await tpAs(a, [
          'intercept',
          'web',
          '--http-header',
          'x-user=alice',
          '--http-path-prefix',
          '/api',
        ])
      ).exitCode,
      0,
    );
    t.teardown(() => tpAs(a, ['leave', 'web']));
    const text = await tpLab(['status', '--name', a]);
    t.regex(
      text.stdout,
      /intercepting HTTP requests with path-prefix \/api and header 'X-User: alice'/,
    );
    const report = json<StatusReport>(await tpLab(['status', '--name', a, '--json']));
    const status = 'status' in report ? report.status : undefined;
    t.truthy(JSON.stringify(status).includes('"pathPrefixes":["/api"]'));
    const list = await tpLab(['list', '-n', ns]);
    t.regex(
      list.stdout,
      new RegExp(
        `intercepted by ${a} \\(HTTP requests with path-prefix /api and header 'X-User: alice'\\)`,
      ),
    );
    const listed = json<ListResult>(await tpLab(['list', '-n', ns, '--json']));
    const web = listed.workloads.find((w) => w.name === 'web');
    t.deepEqual(web?.engagements[0]?.filter?.pathPrefixes, ['/api']);
    t.deepEqual(
      web?.containers.map((x) => x.name),
      ['web'],
    );
  },
);

test.serial(
  'gRPC calls over h2c go by their metadata, on a numeric targetPort with appProtocol',
  async (t) => {
    const before = await serviceSpec(ns, 'grpc');
    t.is((await tpAs(a, ['intercept', 'grpc', '--http-header', 'x-user=alice'])).exitCode, 0);
    const grpcurl = (user: string): Promise<string> =>
      engine
        .runToCompletion(
          {
            image: samplesImage(),
            entrypoint: ['/grpcurl'],
            cmd: [
              '-plaintext',
              '-import-path',
              '/',
              '-proto',
              'echo.proto',
              '-H',
              `x-user:${user}`,
              '-d',
              '{"value":"hi"}',
              `grpc.${ns}:9090`,
              'tp.lab.Echo/Who',
            ],
            labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: a }),
            networkMode: `container:${daemons[a] ?? ''}`,
          },
          60_000,
        )
        .then((r) => r.stdout.replace(/\\"/g, '"'));
    const mine = await until(
      'the gRPC intercept',
      async () => {
        const o = await grpcurl('alice');
        return whos(o)[0] === 'local-a' ? o : undefined;
      },
      15_000,
    );
    t.deepEqual(whos(mine), ['local-a']);
    t.deepEqual(whos(await grpcurl('bob')), ['cluster']);
    t.true((await tpAs(a, ['leave', 'grpc'])).exitCode === 0);
    t.deepEqual(await serviceSpec(ns, 'grpc'), before);
  },
);

test.serial(
  'WebSocket upgrades and server-sent events reach whoever the request matches',
  async (t) => {
    t.is((await tpAs(a, ['intercept', 'web', '--http-header', 'x-user=alice'])).exitCode, 0);
    t.teardown(() => tpAs(a, ['leave', 'web']));
    const ws = (user: string): Promise<string> =>
      engine
        .runToCompletion(
          {
            image: samplesImage(),
            cmd: [
              'ws-client',
              '-url',
              `ws://web.${ns}/ws`,
              '--header',
              `x-user=${user}`,
              '--send',
              'one',
              '--send',
              'two',
            ],
            labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: a }),
            networkMode: `container:${daemons[a] ?? ''}`,
          },
          60_000,
        )
        .then((r) => r.stdout);
    const mine = await until(
      'the WebSocket intercept',
      async () => {
        const o = await ws('alice');
        return whos(o)[0] === 'local-a' ? o : undefined;
      },
      15_000,
    );
    // Both ways, after the upgrade: the local server echoes what the client sends.
    t.deepEqual(mine.trim().split('\n').slice(1), ['one', 'two']);
    t.deepEqual(whos(await ws('bob')), ['cluster']);
    const events = await curlFrom(a, [
      '-N',
      '-H',
      'x-user: alice',
      `http://web.${ns}/sse?n=3&ms=50`,
    ]);
    t.deepEqual(whos(events), ['local-a', 'local-a', 'local-a']);
  },
);

test.serial(
  'filters on a port that does not speak HTTP are refused; without them raw TCP is carried',
  async (t) => {
    const before = await workloadSpec(ns, 'deploy/raw');
    const refused = await tpAs(a, ['intercept', 'raw', '--http-header', 'x-user=alice']);
    t.is(refused.exitCode, 2);
    t.regex(said(refused), /FILTER_NOT_HTTP/);
    t.deepEqual(await workloadSpec(ns, 'deploy/raw'), before);

    await localServer(a, ['tcp-echo', '-listen', ':9000'], 'local-a');
    t.is((await tpAs(a, ['intercept', 'raw'])).exitCode, 0);
    t.teardown(() => tpAs(a, ['leave', 'raw']));
    const send = (message: string): Promise<string> =>
      engine
        .runToCompletion(
          {
            image: samplesImage(),
            cmd: ['tcp', `raw.${ns}:9000`, message],
            labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: a }),
            networkMode: `container:${daemons[a] ?? ''}`,
          },
          60_000,
        )
        .then((r) => r.stdout.trim());
    const accepted = async (): Promise<number> => {
      const report = json<StatusReport>(await tpLab(['status', '--name', a, '--json']));
      return report.status?.engagements.find((e) => e.workload === 'deployment/raw')?.accepted ?? 0;
    };
    // Both ends echo: that the local one answered shows in the connections the daemon carried
    // (kube-proxy may take a moment to follow the Service's switch).
    await until(
      'the local echo',
      async () => ((await send('hello')) === 'hello' && (await accepted()) >= 1 ? true : undefined),
      15_000,
    );
    t.is(await send(`bytes ${'x'.repeat(1000)}`), `bytes ${'x'.repeat(1000)}`);
  },
);

test.serial(
  'a 100 MB chunked upload and h2c by Upgrade reach whoever the request matches, byte-exact',
  async (t) => {
    t.is((await tpAs(a, ['intercept', 'web', '--http-header', 'x-user=alice'])).exitCode, 0);
    t.teardown(() => tpAs(a, ['leave', 'web']));
    const url = `http://web.${ns}/upload`;
    await until(
      'the intercept',
      async () =>
        whos(await curlFrom(a, [url, '-H', 'x-user: alice']))[0] === 'local-a' ? true : undefined,
      15_000,
    );
    // curl in the daemon's image, joined to the session: 100 MB of random bytes, chunked.
    const upload = async (
      user: string,
    ): Promise<{ sent: string; seen: Record<string, unknown> }> => {
      const r = await engine.runToCompletion(
        {
          image: await daemonImageRef(),
          entrypoint: ['sh', '-c'],
          cmd: [
            `head -c 100000000 /dev/urandom > /tmp/body && sha256sum /tmp/body | cut -c1-64 && curl -sS --max-time 120 -T /tmp/body -H 'Transfer-Encoding: chunked' -H 'x-user: ${user}' ${url}`,
          ],
          labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: a }),
          networkMode: `container:${daemons[a] ?? ''}`,
        },
        180_000,
      );
      const [sent = '', ...rest] = r.stdout.split('\n');
      return { sent, seen: JSON.parse(rest.join('\n')) as Record<string, unknown> };
    };
    for (const [user, who] of [
      ['alice', 'local-a'],
      ['bob', 'cluster'],
    ] as const) {
      const { sent, seen } = await upload(user);
      t.is(seen.who, who);
      t.is(seen.bodyBytes, 100_000_000);
      t.is(seen.bodySha256, sent);
    }
    // curl --http2 on http:// asks for h2c with an Upgrade; the connection goes where that
    // request goes, and speaks HTTP/2 from there.
    for (const [user, who] of [
      ['alice', 'local-a'],
      ['bob', 'cluster'],
    ] as const) {
      const out = await curlFrom(a, ['--http2', `http://web.${ns}/up`, '-H', `x-user: ${user}`]);
      const seen = JSON.parse(out) as { who: string; proto: string };
      t.deepEqual([seen.who, seen.proto], [who, 'HTTP/2.0']);
    }
  },
);

test.serial(
  'bad input is refused with a clear error and leaves the workload untouched',
  async (t) => {
    const before = await workloadSpec(ns, 'deploy/web');
    const cases: [string[], RegExp][] = [
      [['intercept', 'web', '--http-header', 'x-user'], /name=value/],
      [['intercept', 'web', '--http-header', 'bad header=1'], /name=value|header/],
      [['intercept', 'web', '--http-path-prefix', 'api'], /\//],
      [['intercept', 'web', '--port', '8080:nope'], /nope/],
      [['intercept', 'web', '--service', 'elsewhere'], /elsewhere/],
      [['intercept', 'web', '--service', 'missing'], /missing/],
      [['intercept', 'lonely'], /replace/],
      [['wiretap', 'lonely'], /Service/],
    ];
    for (const [args, message] of cases) {
      const r = await tpAs(a, args);
      // A workload without a Service is the cluster's state (5); the rest are usage errors (2).
      t.is(r.exitCode, args[1] === 'lonely' ? 5 : 2, `${args.join(' ')}: ${said(r)}`);
      t.regex(said(r), message, args.join(' '));
      t.notRegex(said(r), /\n\s+at /, 'no stack trace');
    }
    t.deepEqual(await workloadSpec(ns, 'deploy/web'), before);
  },
);

test.serial('a wiretap copies matching requests while the app answers them', async (t) => {
  const r = await tpAs(b, ['wiretap', 'web', '--http-header', 'x-user=bob']);
  t.is(r.exitCode, 0, r.stderr);
  t.teardown(() => tpAs(b, ['leave', 'web']));
  const url = `http://web.${ns}/copy`;
  // The first request may meet kube-proxy still routing to the pod the rollout replaced.
  const first = await until('the Service', () => curlFrom(a, [url, '-H', 'x-user: bob']), 15_000);
  t.deepEqual(whos(first), ['cluster']);
  const status = await until(
    'a copy',
    async () => {
      await curlFrom(a, [url, '-H', 'x-user: bob']);
      const s = await tpLab(['status', '--name', b]);
      return /\d+ copied/.test(s.stdout) && !s.stdout.includes(' 0 copied') ? s.stdout : undefined;
    },
    15_000,
  );
  t.regex(
    status,
    /intercepting HTTP requests with header 'X-User: bob' to port 8080; [1-9]\d* copied, 0 dropped/,
  );
});

test.serial(
  'when a session dies its intercept ends within 5 s, the app gets the requests, and tp-manager restores the workload',
  async (t) => {
    const before = { web: await workloadSpec(ns, 'deploy/web'), svc: await serviceSpec(ns, 'web') };
    // A session of its own, with a short grace, so that tp-manager restores within the test.
    // 20 s: long enough that the requests below are all sent before it ends.
    const grace = { TP_ENGAGEMENT_GRACE: '20s' };
    await connect(d, ns, grace);
    await localServer(d, ['web', '-listen', ':8080'], 'local-d');
    t.is((await tpAs(d, ['intercept', 'web', '--http-header', 'x-user=dan'], grace)).exitCode, 0);
    const url = `http://web.${ns}/`;
    await until(
      'the intercept',
      async () =>
        whos(await curlFrom(a, [url, '-H', 'x-user: dan']))[0] === 'local-d' ? true : undefined,
      15_000,
    );
    await run('docker', ['kill', daemons[d] ?? '']);
    const killed = Date.now();
    await until(
      'the app',
      async () =>
        whos(await curlFrom(a, [url, '-H', 'x-user: dan']))[0] === 'cluster' ? true : undefined,
      10_000,
    );
    const back = Date.now() - killed;
    t.true(back < 5000, `back after ${back} ms`);
    // After that, nothing fails (all within the grace, before tp-manager rolls the workload).
    for (let i = 0; i < 10; i += 1)
      t.deepEqual(whos(await curlFrom(a, [url, '-H', 'x-user: dan'])), ['cluster']);
    t.log(`traffic back to the app ${back} ms after the daemon was killed`);
    // Then tp-manager, hearing nothing from the session for its grace, removes the agent.
    await until(
      'the restore',
      async () =>
        JSON.stringify(await workloadSpec(ns, 'deploy/web')) === JSON.stringify(before.web)
          ? true
          : undefined,
      60_000,
    );
    t.deepEqual(await serviceSpec(ns, 'web'), before.svc);
    t.log(`restored by tp-manager ${Date.now() - killed} ms after the daemon was killed`);
  },
);

test.serial(
  'wiretaps run alongside an intercept, and follow the pods when a later engagement rolls the workload',
  async (t) => {
    t.is((await tpAs(a, ['wiretap', 'web'])).exitCode, 0);
    t.teardown(() => tpAs(a, ['leave', 'web']));
    // An intercept makes the agent's mounts writable: the workload rolls, and a's tap follows.
    t.is((await tpAs(b, ['intercept', 'web', '--http-header', 'x-user=bob'])).exitCode, 0);
    t.teardown(() => tpAs(b, ['leave', 'web']));
    const url = `http://web.${ns}/`;
    await until(
      'the intercept',
      async () =>
        whos(await curlFrom(a, [url, '-H', 'x-user: bob']))[0] === 'local-b' ? true : undefined,
      15_000,
    );
    t.deepEqual(whos(await curlFrom(a, [url])), ['cluster']);
    const copied = await until(
      "a's copies",
      async () => {
        await curlFrom(a, [url]);
        const m = /intercepting all TCP connections to port 8080; (\d+) copied/.exec(
          (await tpLab(['status', '--name', a])).stdout,
        );
        return m !== null && Number(m[1]) >= 2 ? Number(m[1]) : undefined;
      },
      20_000,
    );
    t.true(copied >= 2);
  },
);

test.serial(
  'an intercept works in a namespace that enforces the restricted Pod Security Standard',
  async (t) => {
    await kubectlOk(['create', 'namespace', strictNs]);
    await kubectlOk([
      'label',
      'namespace',
      strictNs,
      'pod-security.kubernetes.io/enforce=restricted',
    ]);
    const objects = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        deployment(
          strictNs,
          'web',
          {
            args: ['web', '-listen', ':8080'],
            env: [who],
            ports: [{ name: 'http', containerPort: 8080 }],
            securityContext: restricted,
            readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
          },
          { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
        ),
        service(strictNs, 'web', { ports: [{ name: 'http', port: 80, targetPort: 'http' }] }),
      ],
    });
    const apply = execFile('kubectl', ['--context', context, 'apply', '-f', '-']);
    apply.stdin?.end(objects);
    await new Promise((r) => apply.once('exit', r));
    await kubectlOk(['-n', strictNs, 'rollout', 'status', 'deploy/web', '--timeout=120s'], 130_000);
    const before = await workloadSpec(strictNs, 'deploy/web');
    await tpLab(['quit', '--name', c]);
    await connect(c, strictNs);
    await localServer(c, ['web', '-listen', ':8080'], 'local-c');
    const r = await tpAs(c, ['intercept', 'web', '--http-header', 'x-user=carol']);
    t.is(r.exitCode, 0, r.stderr);
    const url = `http://web.${strictNs}/`;
    await until(
      'the intercept',
      async () =>
        whos(await curlFrom(c, [url, '-H', 'x-user: carol']))[0] === 'local-c' ? true : undefined,
      15_000,
    );
    t.deepEqual(whos(await curlFrom(c, [url])), ['cluster']);
    t.is((await tpAs(c, ['leave', 'web'])).exitCode, 0);
    t.deepEqual(await workloadSpec(strictNs, 'deploy/web'), before);
  },
);
