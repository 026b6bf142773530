/**
 * tp replace against the lab, in a namespace of this file's own with its own echo (the other
 * e2e files use samples/echo): the cluster's requests reach a local container, and leaving
 * restores the workload exactly.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import type { StatusReport } from '../../src/session/status.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import {
  echoWorkload,
  namespaceSession,
  until,
  workloadSpec as engagedSpec,
} from '../helpers/engage.js';
import { engine } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { dnsutilsImage, samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab, tpLabBackground } from '../helpers/session.js';

const ns = `tp-e2e-replace-${randomBytes(3).toString('hex')}`;
const name = sessionName('replace');
let daemon = '';

const manifest = (image: string): string =>
  echoWorkload({
    namespace: ns,
    container: {
      image,
      args: ['echo', '-listen', ':8080'],
      env: [
        { name: 'ECHO_ENV', value: 'GREETING,LOCAL' },
        { name: 'GREETING', value: 'hello from the cluster' },
      ],
      readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
      livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
    },
    annotations: { team: 'e2e' },
  });

/** The workload as a user sees it, less what the API server maintains. */
const workloadSpec = (): Promise<unknown> => engagedSpec(ns, 'deploy/echo');

/** What a pod in the cluster gets from the echo Service. */
async function fromCluster(path = '/'): Promise<Record<string, unknown>> {
  const out = await kubectlOk([
    '-n',
    'samples',
    'exec',
    'deploy/worker',
    '--',
    '/samples',
    'get',
    `http://echo.${ns}${path}`,
  ]);
  return JSON.parse(out) as Record<string, unknown>;
}

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () => manifest(samplesImage()),
  rollouts: ['deploy/echo'],
});

test.before(async () => {
  daemon = (await lab.setUp()).container;
});

test.after.always(() => lab.tearDown());

test.serial(
  'replace --docker-run: the cluster reaches the local container; its exit restores the workload exactly and is tp’s exit code',
  async (t) => {
    const before = await workloadSpec();
    t.is((await fromCluster()).pod !== undefined, true);
    const local = `tp-e2e-local-${randomBytes(3).toString('hex')}`;
    const { output, exited } = tpLabBackground(t, [
      'replace',
      'echo',
      '--use',
      name,
      '--docker-run',
      '--',
      '--name',
      local,
      '-e',
      'LOCAL=yes',
      samplesImage(),
      'echo',
      '-listen',
      ':8080',
    ]);
    const answer = await until('the local answer', async () => {
      const a = await fromCluster('/from-the-cluster');
      return (a.env as Record<string, string> | undefined)?.LOCAL === 'yes' ? a : undefined;
    });
    // The local container has the pod's env, and is asked as the pod would be.
    t.like(answer, {
      path: '/from-the-cluster',
      env: { GREETING: 'hello from the cluster', LOCAL: 'yes' },
    });
    const status = json<StatusReport>(await tpLab(['status', '--name', name, '--json']));
    t.like(status.status?.engagements[0], {
      workload: 'deployment/echo',
      mode: 'replace',
      container: 'echo',
    });

    await engine.signal(local, 'SIGTERM');
    const code = await exited;
    t.not(code, 0, output().stderr);
    t.regex(output().stderr, /Restoring deployment\/echo/);
    t.deepEqual(await workloadSpec(), before);
    const after = await until('the pod’s answer', async () => {
      const a = await fromCluster();
      return (a.env as Record<string, string> | undefined)?.LOCAL === undefined ? a : undefined;
    });
    t.like(after, { env: { GREETING: 'hello from the cluster' } });
  },
);

test.serial(
  'replace without --docker-run stays until tp leave, which restores exactly',
  async (t) => {
    const before = await workloadSpec();
    const r = await tpLab(['replace', 'deploy/echo', '--use', name, '--json']);
    t.is(r.exitCode, 0, r.stderr);
    t.like(json<Record<string, unknown>>(r), {
      state: 'ACTIVE',
      mode: 'replace',
      container: 'echo',
    });
    // Whatever listens in the daemon's namespace gets the traffic: here a container joined to it.
    const local = await engine.startContainer({
      image: samplesImage(),
      cmd: ['echo', '-listen', ':8080'],
      env: { ECHO_ENV: 'LOCAL', LOCAL: 'joined' },
      labels: { 'tp.managed': 'true', 'tp.component': 'test', [LABEL_SESSION]: name },
      networkMode: `container:${daemon}`,
    });
    t.teardown(() => local.stop());
    await until('the joined container’s answer', async () => {
      const a = await fromCluster();
      return (a.env as Record<string, string> | undefined)?.LOCAL === 'joined' ? a : undefined;
    });
    const again = await tpLab(['replace', 'echo', '--use', name, '--json']);
    t.like(json<{ error: Record<string, unknown> }>(again).error, { code: 'ALREADY_ENGAGED' });
    const left = await tpLab(['leave', 'echo', '--use', name, '--json']);
    t.is(left.exitCode, 0, left.stderr);
    t.like(json<Record<string, unknown>>(left), { left: true, restored: true });
    t.deepEqual(await workloadSpec(), before);
  },
);

test.serial(
  'the --docker-run container has the pod’s env, and its own exit code is tp’s',
  async (t) => {
    const before = await workloadSpec();
    const script = 'test "$GREETING" = "hello from the cluster" && exit 7';
    const r = await tpLab([
      'replace',
      'echo',
      '--use',
      name,
      '--docker-run',
      '--',
      dnsutilsImage(),
      'sh',
      '-c',
      script,
    ]);
    t.is(r.exitCode, 7, r.stderr);
    t.deepEqual(await workloadSpec(), before);
  },
);

test.serial(
  'a CLI killed during --docker-run leaves the engagement, and tp leave restores exactly',
  async (t) => {
    const before = await workloadSpec();
    const { child } = tpLabBackground(t, [
      'replace',
      'echo',
      '--use',
      name,
      '--docker-run',
      '--',
      samplesImage(),
      'echo',
      '-listen',
      ':8080',
    ]);
    await until('the engagement', async () => {
      const s = json<StatusReport>(await tpLab(['status', '--name', name, '--json']));
      return s.status?.engagements.length === 1 ? true : undefined;
    });
    child.kill('SIGKILL');
    const left = await tpLab(['leave', 'echo', '--use', name, '--json']);
    t.is(left.exitCode, 0, left.stderr);
    t.like(json<Record<string, unknown>>(left), { left: true, restored: true });
    t.deepEqual(await workloadSpec(), before);
  },
);

// Last: it ends the session.
test.serial(
  'tp quit restores what the session engaged, even after its daemon was killed',
  async (t) => {
    const before = await workloadSpec();
    const r = await tpLab(['replace', 'echo', '--use', name, '--json']);
    t.is(r.exitCode, 0, r.stderr);
    t.notDeepEqual(await workloadSpec(), before);
    await engine.signal(daemon, 'SIGKILL');
    const q = await tpLab(['quit', '--name', name, '--json']);
    t.is(q.exitCode, 0, q.stderr);
    t.deepEqual(json<{ restored?: string[] }>(q).restored, ['deployment/echo']);
    t.deepEqual(await workloadSpec(), before);
  },
);
