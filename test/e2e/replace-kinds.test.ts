/**
 * tp replace of the workloads other than a one-container Deployment, against the lab, in a
 * namespace of this file's own with copies of samples/multi, samples/store and
 * samples/udp-echo: one container of two, a StatefulSet behind a headless Service, and UDP.
 * Requests come from a pod of the namespace; each engagement ends with the workload restored
 * field by field.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import type { EngageResult } from '../../src/engage/engage.js';
import { daemonImageRef, engine, testLabels } from '../helpers/docker.js';
import { namespaceSession, until, workloadSpec } from '../helpers/engage.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab, tpLabBackground } from '../helpers/session.js';

const ns = `tp-e2e-kinds-${randomBytes(3).toString('hex')}`;
const name = sessionName('kinds');
let daemon = '';

const labels = (app: string): { matchLabels: Record<string, string> } => ({
  matchLabels: { app },
});
const podTemplate = (app: string, containers: object[]): object => ({
  metadata: { labels: { app } },
  spec: { terminationGracePeriodSeconds: 1, containers },
});
const deployment = (app: string, containers: object[]): object => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: app, namespace: ns, labels: { app }, annotations: { team: 'e2e' } },
  spec: { replicas: 1, selector: labels(app), template: podTemplate(app, containers) },
});
const service = (app: string, ports: object[], headless = false): object => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: app, namespace: ns },
  spec: { selector: { app }, ports, ...(headless ? { clusterIP: 'None' } : {}) },
});

/** As lab/k8s/samples.yaml has them, with one Service for all of multi's ports. */
const manifest = (image: string): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      deployment('client', [{ name: 'client', image, args: ['pause'] }]),
      deployment('multi', [
        {
          name: 'web',
          image,
          args: ['echo', '-listen', ':8080,:8081'],
          env: [{ name: 'CONTAINER_NAME', value: 'web' }],
          ports: [
            { name: 'http', containerPort: 8080 },
            { name: 'admin', containerPort: 8081 },
          ],
          readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
        },
        {
          name: 'sidecar',
          image,
          args: ['tcp-echo', '-listen', ':9000'],
          ports: [{ name: 'raw', containerPort: 9000 }],
        },
      ]),
      service('multi', [
        { name: 'http', port: 80, targetPort: 'http' },
        { name: 'admin', port: 8081, targetPort: 'admin' },
        { name: 'raw', port: 9000, targetPort: 9000 },
      ]),
      service('store', [{ name: 'http', port: 8080, targetPort: 'http' }], true),
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'store', namespace: ns, labels: { app: 'store' } },
        spec: {
          serviceName: 'store',
          replicas: 2,
          selector: labels('store'),
          template: podTemplate('store', [
            {
              name: 'store',
              image,
              args: ['echo', '-listen', ':8080'],
              ports: [{ name: 'http', containerPort: 8080 }],
              env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
            },
          ]),
        },
      },
      deployment('udp-echo', [
        {
          name: 'udp-echo',
          image,
          args: ['udp-echo', '-listen', ':9001'],
          env: [{ name: 'GREETING', value: 'hello from the cluster' }],
          ports: [{ name: 'echo', containerPort: 9001, protocol: 'UDP' }],
        },
      ]),
      service('udp-echo', [{ name: 'echo', port: 9001, targetPort: 'echo', protocol: 'UDP' }]),
    ],
  });

/** The samples binary run in the namespace's client pod: a request from in the cluster. */
const inCluster = (args: string[]): Promise<string> =>
  kubectlOk(['-n', ns, 'exec', 'deploy/client', '--', '/samples', ...args]);

/** An HTTP GET from the client pod, answered by the samples echo role. */
async function get(url: string): Promise<Record<string, unknown>> {
  return JSON.parse(await inCluster(['get', url])) as Record<string, unknown>;
}

/** The echo role's answer, once it is the one `ok` accepts. */
const answerFrom = (
  what: string,
  url: string,
  ok: (a: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> =>
  until(what, async () => {
    const a = await get(url);
    return ok(a) ? a : undefined;
  });

const envOf = (a: Record<string, unknown>): Record<string, string> =>
  (a.env as Record<string, string> | undefined) ?? {};

interface Replaced {
  /** `kind/name`. */
  workload: string;
  flags?: string[];
  /** The samples image's role and env for the local container. */
  local: { cmd: string[]; env: Record<string, string> };
  /** What the cluster answers once the workload is restored. */
  restored: (t: ExecutionContext) => Promise<void>;
}

/**
 * Owns a replace without --docker-run: `tp replace <workload> --json` with `flags`, a local
 * container joined to the daemon (so listening where the daemon dials), then `tp leave`,
 * after which the workload must be as before, field by field, and serve from the cluster.
 */
const whileReplaced = test.macro(
  async (
    t: ExecutionContext,
    opts: Replaced,
    body: (t: ExecutionContext, engaged: EngageResult) => Promise<void>,
  ) => {
    const before = await workloadSpec(ns, opts.workload);
    const r = await tpLab([
      'replace',
      opts.workload,
      '--use',
      name,
      ...(opts.flags ?? []),
      '--json',
    ]);
    t.is(r.exitCode, 0, r.stderr);
    t.notDeepEqual(await workloadSpec(ns, opts.workload), before);
    const local = await engine.startContainer({
      image: samplesImage(),
      cmd: opts.local.cmd,
      env: opts.local.env,
      labels: testLabels(name),
      networkMode: `container:${daemon}`,
    });
    let left;
    try {
      await body(t, json<EngageResult>(r));
    } finally {
      left = await tpLab(['leave', opts.workload, '--use', name, '--json']);
      await local.stop();
    }
    t.is(left.exitCode, 0, left.stderr);
    t.like(json<Record<string, unknown>>(left), { left: true, restored: true });
    t.deepEqual(await workloadSpec(ns, opts.workload), before);
    await opts.restored(t);
  },
);

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () => manifest(samplesImage()),
  rollouts: ['deploy/client', 'deploy/multi', 'statefulset/store', 'deploy/udp-echo'],
});

test.before(async () => {
  daemon = (await lab.setUp()).container;
});

test.after.always(() => lab.tearDown());

test.serial(
  'replace --container web takes both of web’s ports to the local container; the sidecar keeps serving from the cluster',
  whileReplaced,
  {
    workload: 'deploy/multi',
    flags: ['--container', 'web'],
    local: {
      cmd: ['echo', '-listen', ':8080,:8081'],
      env: { CONTAINER_NAME: 'local', ECHO_ENV: 'LOCAL', LOCAL: 'joined' },
    },
    restored: async (t) => {
      const a = await answerFrom('web’s own answer', 'http://multi/', (x) => x.container === 'web');
      t.deepEqual(a.env, {});
    },
  },
  async (t, engaged) => {
    t.like(engaged, { workload: 'deployment/multi', container: 'web', state: 'ACTIVE' });
    t.deepEqual(
      engaged.ports.map((p) => [p.name, p.port, p.protocol, p.local]),
      [
        ['http', 8080, 'TCP', 8080],
        ['admin', 8081, 'TCP', 8081],
      ],
    );
    const [pod, ...others] = engaged.pods;
    t.is(others.length, 0);
    // The engaged pod runs the agent as web and the sidecar as it was.
    const spec = JSON.parse(
      await kubectlOk(['-n', ns, 'get', 'pod', pod ?? '', '-o', 'jsonpath={.spec.containers}']),
    ) as { name: string; image: string; args?: string[] }[];
    t.deepEqual(
      spec.map((c) => c.name),
      ['web', 'sidecar'],
    );
    t.not(spec[0]?.image, samplesImage());
    t.like(spec[1], { image: samplesImage(), args: ['tcp-echo', '-listen', ':9000'] });

    const http = await answerFrom(
      'the local answer on http',
      `http://multi/`,
      (a) => a.container === 'local',
    );
    t.like(http, { container: 'local', local: '127.0.0.1:8080', env: { LOCAL: 'joined' } });
    const admin = await answerFrom(
      'the local answer on admin',
      `http://multi:8081/admin`,
      (a) => a.container === 'local',
    );
    t.like(admin, { container: 'local', local: '127.0.0.1:8081', path: '/admin' });
    // Nothing listens on 9000 locally and tp did not take it: this is the pod's sidecar.
    t.is((await inCluster(['tcp', 'multi:9000', 'to the sidecar'])).trim(), 'to the sidecar');
  },
);

test.serial(
  'replace of a StatefulSet of 2: each pod, by its name in the headless Service, reaches the local container',
  whileReplaced,
  {
    workload: 'statefulset/store',
    local: { cmd: ['echo', '-listen', ':8080'], env: { ECHO_ENV: 'LOCAL', LOCAL: 'joined' } },
    restored: async (t) => {
      for (const pod of ['store-0', 'store-1']) {
        const a = await answerFrom(
          `${pod}’s own answer`,
          `http://${pod}.store:8080/`,
          (x) => envOf(x).LOCAL === undefined,
        );
        t.is(a.pod, pod);
      }
    },
  },
  async (t, engaged) => {
    t.like(engaged, { workload: 'statefulset/store', container: 'store', state: 'ACTIVE' });
    t.deepEqual([...engaged.pods].sort(), ['store-0', 'store-1']);
    for (const pod of ['store-0', 'store-1']) {
      const a = await answerFrom(
        `the local answer through ${pod}`,
        `http://${pod}.store:8080/${pod}`,
        (x) => envOf(x).LOCAL === 'joined',
      );
      t.like(a, { host: `${pod}.store:8080`, path: `/${pod}`, local: '127.0.0.1:8080' });
    }
  },
);

/** A UDP server that answers with the pod's GREETING, which --docker-run gives it. */
const udpServer = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(process.env.GREETING + ', locally: ' + m, r.port, r.address));
s.bind(9001);
process.on('SIGTERM', () => process.exit(0));
`;

test.serial(
  'replace --docker-run of a UDP workload: datagrams sent to the Service in the cluster get the local server’s answers; its exit restores exactly',
  async (t) => {
    const before = await workloadSpec(ns, 'deploy/udp-echo');
    t.is((await inCluster(['udp', 'udp-echo:9001', 'ping'])).trim(), 'ping');
    const local = `tp-e2e-udp-${randomBytes(3).toString('hex')}`;
    const { output, exited } = tpLabBackground(t, [
      'replace',
      'udp-echo',
      '--use',
      name,
      '--docker-run',
      '--',
      '--name',
      local,
      '--entrypoint',
      'node',
      await daemonImageRef(),
      '-e',
      udpServer,
    ]);
    await until('the local UDP answer', async () => {
      const a = (await inCluster(['udp', 'udp-echo:9001', 'first'])).trim();
      return a.endsWith('locally: first') ? a : undefined;
    });
    for (const m of ['one', 'two', 'three']) {
      t.is(
        (await inCluster(['udp', 'udp-echo:9001', m])).trim(),
        `hello from the cluster, locally: ${m}`,
      );
    }
    await engine.signal(local, 'SIGTERM');
    t.is(await exited, 0, output().stderr);
    t.regex(output().stderr, /Restoring deployment\/udp-echo/);
    t.deepEqual(await workloadSpec(ns, 'deploy/udp-echo'), before);
    const back = await until('the pod’s echo', async () => {
      const a = (await inCluster(['udp', 'udp-echo:9001', 'again'])).trim();
      return a === 'again' ? a : undefined;
    });
    t.is(back, 'again');
  },
);
