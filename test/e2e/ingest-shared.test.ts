/**
 * tp ingest shared by two sessions, of a DaemonSet, and ended by tp uninstall (issue 10),
 * against the lab, in a namespace of this file's own with two sessions connected to it. Uses a
 * manager namespace of its own too, since its last test uninstalls that manager (and with it
 * ends both sessions), which must disturb no other file.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectResult } from '../../src/session/connect.js';
import type { EngageResult, LeaveResult } from '../../src/engage/engage.js';
import type { ListResult } from '../../src/session/list.js';
import type { StatusReport } from '../../src/session/status.js';
import type { UninstallResult } from '../../src/session/quit.js';
import { ANNOTATION_ENGAGEMENTS } from '../../src/lib/k8s-keys.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { namespaceSession, workloadSpec } from '../helpers/engage.js';
import { engine } from '../helpers/docker.js';
import { kubectl, kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab } from '../helpers/session.js';

const hex = randomBytes(3).toString('hex');
const ns = `tp-e2e-shared-${hex}`;
const managerNs = `tp-e2e-shared-mgr-${hex}`;
const env = { TP_MANAGER_NAMESPACE: managerNs };
const a = sessionName('shared-a');
const b = sessionName('shared-b');
const dir = mkdtempSync(join(tmpdir(), 'tp-e2e-shared-'));
const daemons: Record<string, string> = {};

const container = (image: string): Record<string, unknown> => ({
  name: 'echo',
  image,
  args: ['echo', '-listen', ':8080'],
  ports: [{ name: 'http', containerPort: 8080 }],
  readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
});

const podTemplate = (app: string, c: Record<string, unknown>): object => ({
  metadata: { labels: { app } },
  spec: { terminationGracePeriodSeconds: 1, containers: [c] },
});

const manifest = (image: string): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name: 'echo',
          namespace: ns,
          labels: { app: 'echo' },
          annotations: { team: 'e2e' },
        },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'echo' } },
          template: podTemplate('echo', container(image)),
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'node-echo', namespace: ns, labels: { app: 'node-echo' } },
        spec: {
          selector: { matchLabels: { app: 'node-echo' } },
          template: podTemplate('node-echo', {
            ...container(image),
            env: [{ name: 'FOO', value: 'bar' }],
          }),
        },
      },
    ],
  });

const lab = namespaceSession({
  namespace: ns,
  session: a,
  manifest: () => manifest(samplesImage()),
  rollouts: ['deploy/echo', 'daemonset/node-echo'],
  env,
});

test.before(async () => {
  daemons[a] = (await lab.setUp()).container;
  const r = await tpLab(['connect', '--docker', '-n', ns, '--name', b, '--json'], env);
  if (r.exitCode !== 0) throw new Error(`connect of ${b} failed: ${r.stdout} ${r.stderr}`);
  daemons[b] = json<ConnectResult>(r).container;
});

test.after.always(async () => {
  await tpLab(['quit', '--name', b], env);
  await engine.removeLabelled({ [LABEL_SESSION]: b });
  await lab.tearDown();
  await tpLab(['uninstall', '--manager-namespace', managerNs], env);
  await kubectl(['delete', 'namespace', managerNs, '--ignore-not-found', '--wait=false']);
  rmSync(dir, { recursive: true, force: true });
});

const tpAs = (session: string, args: string[]): ReturnType<typeof tpLab> =>
  tpLab([...args, '--use', session, '--json'], env);

interface PodTemplateOf {
  metadata: { annotations?: Record<string, string> };
  spec: { template: { spec: { containers: { name: string }[] } } };
}

async function workload(ref: string): Promise<PodTemplateOf> {
  return JSON.parse(await kubectlOk(['-n', ns, 'get', ref, '-o', 'json'])) as PodTemplateOf;
}

/** The sessions a workload's engagements annotation names, sorted. */
async function engagedBy(ref: string): Promise<string[]> {
  const raw = (await workload(ref)).metadata.annotations?.[ANNOTATION_ENGAGEMENTS];
  return raw === undefined ? [] : Object.keys(JSON.parse(raw) as object).sort();
}

/** The container names of the pod template. */
async function templateContainers(ref: string): Promise<string[]> {
  return (await workload(ref)).spec.template.spec.containers.map((c) => c.name);
}

/** The container names of each pod with the label `app`, not being deleted, by pod name. */
async function podContainers(app: string): Promise<Record<string, string[]>> {
  const list = JSON.parse(
    await kubectlOk(['-n', ns, 'get', 'pods', '-l', `app=${app}`, '-o', 'json']),
  ) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { containers: { name: string }[] };
    }[];
  };
  return Object.fromEntries(
    list.items
      .filter((p) => p.metadata.deletionTimestamp === undefined)
      .map((p) => [p.metadata.name, p.spec.containers.map((c) => c.name)]),
  );
}

/** Ends what a failed test left engaged, so that the next test starts from the manifest. */
async function leaveAll(ref: string): Promise<void> {
  for (const s of await engagedBy(ref).catch(() => [])) await tpAs(s, ['leave', ref]);
}

const rollout = (ref: string): Promise<string> =>
  kubectlOk(['-n', ns, 'rollout', 'status', ref, '--timeout=90s'], 100_000);

test.serial(
  'two sessions ingest one Deployment: one tp-agent sidecar serves both, and the workload is restored only when the last one leaves',
  async (t) => {
    const before = await workloadSpec(ns, 'deploy/echo');
    t.teardown(() => leaveAll('deploy/echo'));

    const first = await tpAs(a, ['ingest', 'deploy/echo']);
    t.is(first.exitCode, 0, `${first.stdout}\n${first.stderr}`);
    const second = await tpAs(b, ['ingest', 'deploy/echo']);
    t.is(second.exitCode, 0, `${second.stdout}\n${second.stderr}`);
    t.like(json<EngageResult>(second), { session: b, mode: 'ingest', state: 'ACTIVE' });

    t.deepEqual(await engagedBy('deploy/echo'), [a, b].sort());
    t.deepEqual(await templateContainers('deploy/echo'), ['echo', 'tp-agent']);
    const pods = json<EngageResult>(second).pods;
    t.is(pods.length, 1);
    const running = await podContainers('echo');
    for (const pod of pods) t.deepEqual(running[pod], ['echo', 'tp-agent'], pod);

    const listed = await tpLab(['list', '-n', ns, '--json'], env);
    t.is(listed.exitCode, 0, listed.stderr);
    const echo = json<ListResult>(listed).workloads.find(
      (w) => w.kind === 'Deployment' && w.name === 'echo',
    );
    t.is(echo?.state, 'engaged');
    t.deepEqual(
      echo?.engagements.map((e) => [e.session, e.mode]).sort(),
      [
        [a, 'ingest'],
        [b, 'ingest'],
      ].sort(),
    );

    const leftA = await tpAs(a, ['leave', 'deploy/echo']);
    t.is(leftA.exitCode, 0, leftA.stderr);
    t.like(json<LeaveResult>(leftA), { session: a, left: true, restored: false });
    t.deepEqual(await engagedBy('deploy/echo'), [b]);
    t.deepEqual(await templateContainers('deploy/echo'), ['echo', 'tp-agent']);
    for (const [s, engages] of [
      [a, []],
      [b, ['deployment/echo']],
    ] as const) {
      const status = await tpLab(['status', '--name', s, '--json'], env);
      t.is(status.exitCode, 0, status.stderr);
      t.deepEqual(
        json<StatusReport>(status).status?.engagements.map((e) => e.workload),
        engages,
        `${s}'s engagements`,
      );
    }
    await rollout('deploy/echo');
    t.true(
      Object.values(await podContainers('echo')).every((c) => c.includes('tp-agent')),
      'every pod keeps the sidecar',
    );

    const leftB = await tpAs(b, ['leave', 'deploy/echo']);
    t.is(leftB.exitCode, 0, leftB.stderr);
    t.like(json<LeaveResult>(leftB), { session: b, left: true, restored: true });
    t.deepEqual(await workloadSpec(ns, 'deploy/echo'), before);
    await rollout('deploy/echo');
  },
);

test.serial(
  'ingest of a DaemonSet: its pods get the tp-agent sidecar, --env-json has the env the DaemonSet sets, and leave restores it exactly',
  async (t) => {
    const before = await workloadSpec(ns, 'daemonset/node-echo');
    t.teardown(() => leaveAll('daemonset/node-echo'));
    const file = join(dir, 'node-echo.json');
    const r = await tpAs(a, ['ingest', 'daemonset/node-echo', '--env-json', file]);
    t.is(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const engaged = json<EngageResult>(r);
    t.like(engaged, { workload: 'daemonset/node-echo', mode: 'ingest', container: 'echo' });
    t.deepEqual(await templateContainers('daemonset/node-echo'), ['echo', 'tp-agent']);
    t.true(engaged.pods.length > 0);
    const running = await podContainers('node-echo');
    for (const pod of engaged.pods) t.deepEqual(running[pod], ['echo', 'tp-agent'], pod);
    const vars = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
    t.is(vars.FOO, 'bar');

    const left = await tpAs(a, ['leave', 'daemonset/node-echo']);
    t.is(left.exitCode, 0, left.stderr);
    t.like(json<LeaveResult>(left), { left: true, restored: true });
    t.deepEqual(await workloadSpec(ns, 'daemonset/node-echo'), before);
    await rollout('daemonset/node-echo');
  },
);

// Removes this file's manager and ends both sessions: last.
test.serial(
  'tp uninstall ends the sessions that ingest a workload: the workload is restored exactly and their daemons are gone',
  async (t) => {
    const before = await workloadSpec(ns, 'deploy/echo');
    for (const s of [a, b]) {
      const r = await tpAs(s, ['ingest', 'deploy/echo']);
      t.is(r.exitCode, 0, `${s}: ${r.stdout}\n${r.stderr}`);
    }
    t.deepEqual(await engagedBy('deploy/echo'), [a, b].sort());

    const r = await tpLab(['uninstall', '--manager-namespace', managerNs, '--json'], env);
    t.is(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    t.deepEqual(json<UninstallResult>(r).sessions.sort(), [a, b].sort());
    t.deepEqual(await engagedBy('deploy/echo'), []);
    t.deepEqual(await workloadSpec(ns, 'deploy/echo'), before);
    for (const s of [a, b]) {
      t.false(await engine.isRunning(daemons[s] ?? s), `${s}'s daemon still runs`);
      t.deepEqual((await engine.listLabelled({ [LABEL_SESSION]: s })).containers, [], s);
    }
  },
);
