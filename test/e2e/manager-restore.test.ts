/**
 * tp-manager restores what a session engages once the session has sent no heartbeat for its
 * grace (lowered here to 8 s), and never while it still sends them. Uses a manager namespace
 * of its own, so this file's manager hears only its session, and uninstalling it at the end
 * (its ClusterRole and binding with it) disturbs no other file.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { MANAGER_RULES, managerRbacName } from '../../src/k8s/manager.js';
import { ANNOTATION_ENGAGEMENTS } from '../../src/lib/k8s-keys.js';
import { echoWorkload, namespaceSession, until, workloadSpec } from '../helpers/engage.js';
import { engine } from '../helpers/docker.js';
import { kubectl, kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab } from '../helpers/session.js';

const hex = randomBytes(3).toString('hex');
const ns = `tp-e2e-reaper-${hex}`;
const managerNs = `tp-e2e-reaper-mgr-${hex}`;
const name = sessionName('reaper');
const GRACE_S = 8;
const env = { TP_MANAGER_NAMESPACE: managerNs, TP_ENGAGEMENT_GRACE: `${GRACE_S}s` };
const account = `system:serviceaccount:${managerNs}:tp-manager`;
let daemon = '';

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () =>
    echoWorkload({
      namespace: ns,
      container: {
        image: samplesImage(),
        args: ['echo', '-listen', ':8080'],
        readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
      },
      annotations: { team: 'e2e' },
    }),
  rollouts: ['deploy/echo'],
  env,
});

test.before(async () => {
  daemon = (await lab.setUp()).container;
});

test.after.always(async () => {
  await lab.tearDown();
  await tpLab(['uninstall', '--manager-namespace', managerNs], env);
  await kubectl(['delete', 'namespace', managerNs, '--ignore-not-found', '--wait=false']);
});

const spec = (): Promise<unknown> => workloadSpec(ns, 'deploy/echo');

/** The sessions the echo Deployment's engagements annotation names. */
async function engagedBy(): Promise<string[]> {
  const w = JSON.parse(await kubectlOk(['-n', ns, 'get', 'deploy', 'echo', '-o', 'json'])) as {
    metadata: { annotations?: Record<string, string> };
  };
  const raw = w.metadata.annotations?.[ANNOTATION_ENGAGEMENTS];
  return raw === undefined ? [] : Object.keys(JSON.parse(raw) as object);
}

async function replace(): Promise<void> {
  const r = await tpLab(['replace', 'deploy/echo', '--use', name, '--json'], env);
  if (r.exitCode !== 0) throw new Error(`replace failed: ${r.stdout} ${r.stderr}`);
}

const canI = async (verb: string, resource: string): Promise<boolean> =>
  (await kubectl(['auth', 'can-i', verb, resource, '-A', `--as=${account}`])).stdout.trim() ===
  'yes';

test.serial(
  'tp-manager may read and patch workloads, read and patch Services, and nothing else, and meets the restricted Pod Security Standard',
  async (t) => {
    const rbac = managerRbacName(managerNs);
    const role = JSON.parse(await kubectlOk(['get', 'clusterrole', rbac, '-o', 'json'])) as {
      rules: unknown;
      metadata: { labels: Record<string, string> };
    };
    t.deepEqual(role.rules, MANAGER_RULES);
    t.like(role.metadata.labels, { 'tp.managed': 'true' });
    const binding = JSON.parse(
      await kubectlOk(['get', 'clusterrolebinding', rbac, '-o', 'json']),
    ) as { subjects: unknown };
    t.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: 'tp-manager', namespace: managerNs },
    ]);
    for (const r of ['deployments', 'statefulsets', 'replicasets', 'daemonsets']) {
      for (const verb of ['get', 'list', 'patch']) t.true(await canI(verb, r), `${verb} ${r}`);
      for (const verb of ['create', 'delete', 'update'])
        t.false(await canI(verb, r), `${verb} ${r}`);
    }
    // Services: an intercepted port is pointed back at the app before its agent goes.
    for (const verb of ['get', 'patch']) t.true(await canI(verb, 'services'), `${verb} services`);
    for (const verb of ['list', 'create', 'delete', 'update'])
      t.false(await canI(verb, 'services'), `${verb} services`);
    for (const r of ['pods', 'secrets', 'configmaps', 'namespaces']) {
      t.false(await canI('get', r), `get ${r}`);
    }
    // Asking to enforce `restricted` on its namespace lists the pods that would violate it.
    const check = await kubectl([
      'label',
      '--dry-run=server',
      '--overwrite',
      'namespace',
      managerNs,
      'pod-security.kubernetes.io/enforce=restricted',
    ]);
    t.is(check.exitCode, 0, check.stderr);
    t.notRegex(check.stderr, /violate/i);
  },
);

test.serial(
  'a session that keeps sending heartbeats keeps its engagement past the grace',
  async (t) => {
    const before = await spec();
    await replace();
    t.deepEqual(await engagedBy(), [name]);
    await new Promise((r) => setTimeout(r, 3 * GRACE_S * 1000));
    t.deepEqual(await engagedBy(), [name]);
    const left = await tpLab(['leave', 'echo', '--use', name, '--json'], env);
    t.is(left.exitCode, 0, left.stderr);
    t.like(json<Record<string, unknown>>(left), { left: true, restored: true });
    t.deepEqual(await spec(), before);
  },
);

// Kills the session's daemon: last but the uninstall.
test.serial(
  'when the daemon is killed, tp-manager restores the workload exactly once the grace has passed',
  async (t) => {
    const before = await spec();
    await replace();
    t.notDeepEqual(await spec(), before);
    await engine.signal(daemon, 'SIGKILL');
    const killed = Date.now();
    // The grace, a sweep (at most 30 s) and the API server's round trips.
    await until(
      'the restore',
      async () => ((await engagedBy()).length === 0 ? true : undefined),
      (GRACE_S + 40) * 1000,
    );
    const took = Date.now() - killed;
    t.log(`restored ${took} ms after the kill (grace ${GRACE_S} s)`);
    // The last heartbeat was at most a third of the grace before the kill.
    t.true(took >= ((GRACE_S * 2) / 3) * 1000 - 500, `restored after ${took} ms`);
    await kubectlOk(['-n', ns, 'rollout', 'status', 'deploy/echo', '--timeout=90s'], 100_000);
    t.deepEqual(await spec(), before);
    const logs = await kubectlOk(['-n', managerNs, 'logs', 'deploy/tp-manager']);
    const restored = logs
      .split('\n')
      .filter((l) => l.includes('restored the engagement of a silent session'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    t.like(restored.at(-1), {
      session: name,
      workload: 'deployment/echo',
      namespace: ns,
      grace: GRACE_S,
      restored: true,
    });
  },
);

test.serial('tp uninstall removes the ClusterRole and its binding', async (t) => {
  const r = await tpLab(['uninstall', '--manager-namespace', managerNs, '--json'], env);
  t.is(r.exitCode, 0, r.stderr);
  const rbac = managerRbacName(managerNs);
  const removed = json<{ cluster: string[] }>(r).cluster;
  for (const what of [
    `deployment ${managerNs}/tp-manager`,
    `serviceaccount ${managerNs}/tp-manager`,
    `clusterrolebinding ${rbac}`,
    `clusterrole ${rbac}`,
  ]) {
    t.true(removed.includes(what), `${what} in ${removed.join(', ')}`);
  }
  const left = await kubectl([
    'get',
    'clusterrole,clusterrolebinding',
    rbac,
    '--ignore-not-found',
    '-o',
    'name',
  ]);
  t.is(left.stdout.trim(), '');
});
