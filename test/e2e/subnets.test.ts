import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig, type LoadedKubeConfig } from '../../src/k8s/kubeconfig.js';
import {
  applyProxyFlags,
  checkCollisions,
  discoverSubnets,
  serviceRangesFromApiServer,
} from '../../src/k8s/subnets.js';
import { TpError } from '../../src/lib/errors.js';
import { LABEL_COMPONENT, LABEL_MANAGED, LABEL_SESSION } from '../../src/lib/labels.js';
import { context, kubectl, kubectlOk, serviceAccountKubeconfig } from '../helpers/kubectl.js';

/** The lab's ranges (lab/steps/k8s-up): the node's pod range and the service range. */
const LAB_PODS = '198.18.0.0/24';
const LAB_SERVICES = '198.18.128.0/17';
/** The lab's Docker bridge (lab/steps/docker, `bip`). */
const DOCKER_BRIDGE = { name: 'bridge', cidr: '198.19.0.0/24' };

const lab = (): LoadedKubeConfig => loadKubeConfig({ context });

test('the lab reports its pod range from the node and its service range from ServiceCIDR', async (t) => {
  const { kc, target } = lab();
  t.deepEqual(await discoverSubnets(kc, target), {
    pods: [LAB_PODS],
    podsFrom: 'node.spec.podCIDRs',
    services: [LAB_SERVICES],
    servicesFrom: 'ServiceCIDR',
    notes: [],
  });
});

test('the API server names its service range when refusing a dry-run Service, which is never created', async (t) => {
  const { kc, target } = lab();
  t.deepEqual(await serviceRangesFromApiServer(kc, target), [LAB_SERVICES]);
  const names = await kubectlOk(['get', 'services', '-A', '-o', 'name']);
  t.notRegex(names, /tp-service-range-probe-/);
});

/**
 * A service account with only the rules given, and a kubeconfig that uses its token against
 * the lab's API server. Everything it creates carries the test's session label and is deleted
 * when the test ends.
 */
async function serviceAccount(
  t: ExecutionContext,
  rules: { resources: string[]; verbs: string[] }[],
): Promise<LoadedKubeConfig> {
  const session = `test-${randomBytes(4).toString('hex')}`;
  const name = `tp-e2e-subnets-${session}`;
  const labels = { [LABEL_MANAGED]: 'true', [LABEL_COMPONENT]: 'test', [LABEL_SESSION]: session };
  const meta = { name, labels };
  const objects = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { ...meta, namespace: 'default' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: meta,
      rules: rules.map((r) => ({ apiGroups: [''], ...r })),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: 'default' }],
    },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'tp-e2e-subnets-'));
  const manifest = join(dir, 'rbac.json');
  writeFileSync(manifest, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
  t.teardown(async () => {
    await kubectl(['delete', '-f', manifest, '--ignore-not-found', '--wait=false']);
  });
  await kubectlOk(['apply', '-f', manifest]);

  // The authorizer learns of new bindings through a watch: wait until it has.
  const as = `system:serviceaccount:default:${name}`;
  for (const { resources, verbs } of rules) {
    for (let i = 0; ; i++) {
      const r = await kubectl(['auth', 'can-i', verbs[0] ?? '', resources[0] ?? '', '--as', as]);
      if (r.stdout.trim() === 'yes') break;
      if (i === 50) throw new Error(`RBAC for ${as} did not take effect`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  const kubeconfig = await serviceAccountKubeconfig(dir, 'default', name);
  return loadKubeConfig({ kubeconfig }, {});
}

test('a user who may not list nodes or ServiceCIDRs gets the ranges from pod IPs and the API server', async (t) => {
  const { kc, target } = await serviceAccount(t, [
    { resources: ['pods'], verbs: ['list'] },
    { resources: ['services'], verbs: ['create'] },
  ]);
  const found = await discoverSubnets(kc, target);
  t.like(found, {
    pods: [LAB_PODS],
    podsFrom: 'pod IPs',
    services: [LAB_SERVICES],
    servicesFrom: 'apiserver error',
  });
  t.is(found.notes.length, 2);
  t.regex(found.notes[0] ?? '', /Listing nodes is forbidden/);
  t.regex(found.notes[1] ?? '', /Listing ServiceCIDRs is forbidden/);
});

test('a user who may do none of it is told which permission is missing', async (t) => {
  const { kc, target } = await serviceAccount(t, [{ resources: ['configmaps'], verbs: ['get'] }]);
  const err = await t.throwsAsync(discoverSubnets(kc, target), { instanceOf: TpError });
  t.like(err, { category: 'config', code: 'CLUSTER_FORBIDDEN' });
  t.regex(err.message, /may not list pods in namespace "default"/);
  t.regex(err.fix, /auth can-i list pods/);
  t.regex(err.fix, /--also-proxy/);
});

test('a routed range over the daemon network is refused with the ranges and the fix', (t) => {
  const err = t.throws(
    () => {
      checkCollisions(['198.19.0.0/16'], [DOCKER_BRIDGE]);
    },
    { instanceOf: TpError },
  );
  t.like(err, { category: 'usage', code: 'SUBNET_COLLISION' });
  t.regex(
    err.message,
    /198\.19\.0\.0\/16 collides with Docker network "bridge" \(198\.19\.0\.0\/24\)/,
  );
  t.regex(err.fix, /--never-proxy 198\.19\.0\.0\/24/);
  t.regex(err.fix, /different|outside/);

  // Following the fix: the route is split around the bridge and no longer collides.
  const plan = applyProxyFlags({ pods: [], services: [] }, ['198.19.0.0/16'], ['198.19.0.0/24']);
  t.notThrows(() => {
    checkCollisions(plan.routed, [DOCKER_BRIDGE]);
  });
  t.is(plan.routed.length, 8);
  t.deepEqual(plan.neverProxy, ['198.19.0.0/24']);
});

test("the lab's own ranges do not collide with its Docker bridge", async (t) => {
  const { kc, target } = lab();
  const plan = applyProxyFlags(await discoverSubnets(kc, target), [], []);
  t.deepEqual(plan.routed, [LAB_PODS, LAB_SERVICES]);
  t.notThrows(() => {
    checkCollisions(plan.routed, [DOCKER_BRIDGE]);
  });
});

test('proxy flags are normalised, merged and validated', (t) => {
  const plan = applyProxyFlags(
    { pods: [LAB_PODS], services: [LAB_SERVICES] },
    ['198.18.1.7/24', '2001:2::1/48'],
    ['198.18.128.10/32'],
  );
  t.true(plan.routed.includes('198.18.0.0/23'), 'an adjacent --also-proxy merges with the pods');
  t.true(plan.routed.includes('2001:2::/48'));
  t.false(
    plan.routed.some((r) => r === LAB_SERVICES),
    'the service range is split around the hole',
  );
  t.deepEqual(plan.neverProxy, ['198.18.128.10/32']);

  const err = t.throws(() => applyProxyFlags({ pods: [], services: [] }, ['pods'], []), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'usage', code: 'CIDR_INVALID' });
  t.regex(err.message, /^--also-proxy: "pods" is not a CIDR range/);
});
