import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import {
  ENGAGEMENT_ANNOTATION,
  listWorkloads,
  parseEngagements,
  type Workload,
} from '../../src/k8s/workloads.js';
import { TpError } from '../../src/lib/errors.js';
import { context, kubectl, kubectlOk, serviceAccountKubeconfig } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';

const { kc, target } = loadKubeConfig({ context });

// A namespace of this file's own, for objects the samples do not have. Every workload in it
// wants zero pods, so it costs the node nothing.
const ns = `tp-e2e-workloads-${randomBytes(3).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'tp-workloads-'));
const engagement = {
  'test-session': { mode: 'replace', container: 'web', ports: [], by: 'e2e@lab', extra: 1 },
};

function template(app: string, ports: string): string {
  return `
  selector: { matchLabels: { app: ${app} } }
  template:
    metadata: { labels: { app: ${app} } }
    spec:
      containers:
        - { name: app, image: ${samplesImage()}, ports: ${ports} }`;
}

test.before(async () => {
  const http = '[{ name: http, containerPort: 8080 }]';
  const manifest = `
apiVersion: v1
kind: Namespace
metadata: { name: ${ns} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: nobody, namespace: ${ns} }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: engaged
  namespace: ${ns}
  annotations: { ${ENGAGEMENT_ANNOTATION}: '${JSON.stringify(engagement)}' }
spec:
  replicas: 0${template('engaged', http)}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: garbled
  namespace: ${ns}
  annotations: { ${ENGAGEMENT_ANNOTATION}: 'not json' }
spec:
  replicas: 0${template('garbled', http)}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: { name: orphan, namespace: ${ns} }
spec:
  replicas: 0${template('orphan', '[{ containerPort: 9000 }]')}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: nowhere, namespace: ${ns} }
spec:${template('nowhere', '[{ name: dns, containerPort: 53, protocol: UDP }]')}
      nodeSelector: { tp-e2e/no-such-node: 'true' }
`;
  const file = join(dir, 'workloads.yaml');
  writeFileSync(file, manifest);
  await kubectlOk(['apply', '-f', file]);
  // The Deployments' own ReplicaSets must exist before the listing, or leaving them out
  // proves nothing.
  await kubectlOk([
    '-n',
    ns,
    'wait',
    '--for=jsonpath={.status.observedGeneration}=1',
    'deploy/engaged',
    'deploy/garbled',
    '--timeout=60s',
  ]);
});

test.after.always(async () => {
  rmSync(dir, { recursive: true, force: true });
  await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
});

const brief = (w: Workload) => `${w.kind}/${w.name}`;

test('samples lists its Deployments and the store StatefulSet, sorted, all ready to engage', async (t) => {
  const workloads = await listWorkloads(kc, target, 'samples');
  t.deepEqual(workloads.map(brief), [
    'Deployment/bulk',
    'Deployment/dnsutils',
    'Deployment/echo',
    'Deployment/grpc',
    'Deployment/multi',
    'Deployment/tcp-echo',
    'Deployment/udp-echo',
    'Deployment/volumes',
    'Deployment/web',
    'Deployment/worker',
    'StatefulSet/store',
  ]);
  for (const w of workloads) {
    t.is(w.state, 'ready to engage', brief(w));
    t.is(w.namespace, 'samples');
    t.deepEqual(w.engagements, []);
  }
  t.deepEqual(
    workloads.find((w) => w.name === 'store')?.replicas,
    { desired: 2, ready: 2 },
    'the StatefulSet runs two replicas',
  );
});

test('multi lists both of its containers with their named ports', async (t) => {
  const multi = (await listWorkloads(kc, target, 'samples')).find((w) => w.name === 'multi');
  t.deepEqual(multi?.containers, [
    {
      name: 'web',
      ports: [
        { name: 'http', port: 8080, protocol: 'TCP' },
        { name: 'admin', port: 8081, protocol: 'TCP' },
      ],
    },
    { name: 'sidecar', ports: [{ name: 'raw', port: 9000, protocol: 'TCP' }] },
  ]);
  const udp = (await listWorkloads(kc, target, 'samples')).find((w) => w.name === 'udp-echo');
  t.deepEqual(udp?.containers[0]?.ports, [{ name: 'echo', port: 9001, protocol: 'UDP' }]);
});

test('a namespace that does not exist is a usage error naming --namespace', async (t) => {
  const err = await t.throwsAsync(listWorkloads(kc, target, `${ns}-missing`), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'usage', code: 'NAMESPACE_NOT_FOUND', exitCode: 2 });
  t.regex(err.message, new RegExp(`"${ns}-missing"`));
  t.regex(err.fix, /--namespace/);
});

test('a namespace without workloads lists nothing', async (t) => {
  t.deepEqual(await listWorkloads(kc, target, 'kube-node-lease'), []);
});

test('engagement, orphan ReplicaSets and DaemonSets are read, Deployment-owned ReplicaSets are not', async (t) => {
  const owned = await kubectlOk(['-n', ns, 'get', 'rs', '-o', 'name']);
  t.regex(owned, /replicaset\.apps\/engaged-/, 'the Deployment made its ReplicaSet');

  const workloads = await listWorkloads(kc, target, ns);
  t.deepEqual(workloads.map(brief), [
    'Deployment/engaged',
    'Deployment/garbled',
    'ReplicaSet/orphan',
    'DaemonSet/nowhere',
  ]);
  const [engaged, garbled, orphan, nowhere] = workloads;
  t.like(engaged, {
    state: 'engaged',
    engagements: [{ mode: 'replace', session: 'test-session', by: 'e2e@lab' }],
    replicas: { desired: 0, ready: 0 },
  });
  t.false(engaged?.engagements.some((e) => 'extra' in e) === true, 'unknown keys are dropped');
  t.like(garbled, { state: 'scaled to zero', engagements: [] });
  t.regex(garbled?.engagementError ?? '', /not JSON/);
  t.deepEqual(orphan?.containers, [{ name: 'app', ports: [{ port: 9000, protocol: 'TCP' }] }]);
  t.like(nowhere, { state: 'scaled to zero', replicas: { desired: 0, ready: 0 } });
  t.deepEqual(nowhere?.containers[0]?.ports, [{ name: 'dns', port: 53, protocol: 'UDP' }]);
});

test('a user whom RBAC forbids to list workloads gets a config error naming the permission', async (t) => {
  const file = await serviceAccountKubeconfig(dir, ns, 'nobody');
  const nobody = loadKubeConfig({ kubeconfig: file }, {});
  const err = await t.throwsAsync(listWorkloads(nobody.kc, nobody.target, ns), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'config', code: 'CLUSTER_FORBIDDEN' });
  t.regex(err.message, new RegExp(`namespace "${ns}"`));
  t.regex(err.message, /system:serviceaccount/, "the API server's reason is kept");
  t.regex(err.fix, /kubectl auth can-i list/);
});

test('an engagements annotation is read only when each session’s entry has a mode', (t) => {
  t.deepEqual(parseEngagements('{"s1":{"mode":"intercept"},"s2":{"mode":"ingest","by":"bo"}}'), {
    ok: true,
    engagements: [
      { mode: 'intercept', session: 's1' },
      { mode: 'ingest', session: 's2', by: 'bo' },
    ],
  });
  t.deepEqual(parseEngagements('{}'), { ok: true, engagements: [] });
  for (const raw of [
    '',
    '{',
    'null',
    '[]',
    '"replace"',
    '{"s":{}}',
    '{"s":{"mode":1}}',
    '{"s":3}',
  ]) {
    t.false(parseEngagements(raw).ok, raw);
  }
});
