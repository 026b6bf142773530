/**
 * Bad input to tp replace and tp ingest gets a clear error, no stack trace, and leaves every
 * workload as it was. In a namespace of this file's own, with its own workloads.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import type { TpErrorJson } from '../../src/lib/errors.js';
import { namespaceSession } from '../helpers/engage.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab } from '../helpers/session.js';

const ns = `tp-e2e-bad-${randomBytes(3).toString('hex')}`;
const name = sessionName('bad');

const deployment = (app: string, containers: object[], replicas = 1): object => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: app, namespace: ns },
  spec: {
    replicas,
    selector: { matchLabels: { app } },
    template: {
      metadata: { labels: { app } },
      spec: { terminationGracePeriodSeconds: 1, containers },
    },
  },
});
const echo = (cname: string, port: number): object => ({
  name: cname,
  image: samplesImage(),
  args: ['echo', '-listen', `:${port}`],
  ports: [{ name: `http-${cname}`, containerPort: port }],
});

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        deployment('echo', [echo('echo', 8080)]),
        deployment('two', [echo('web', 8080), echo('side', 9000)]),
        deployment('idle', [echo('idle', 8080)], 0),
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'bare', namespace: ns },
          spec: { containers: [echo('bare', 8080)] },
        },
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'once', namespace: ns },
          spec: {
            template: { spec: { restartPolicy: 'Never', containers: [echo('once', 8080)] } },
          },
        },
      ],
    }),
  rollouts: ['deploy/echo', 'deploy/two'],
});
test.before(() => lab.setUp());
test.after.always(() => lab.tearDown());

/** The namespace's Deployments as a user sees them, less what the API server maintains. */
async function deployments(): Promise<string> {
  return kubectlOk([
    '-n',
    ns,
    'get',
    'deploy',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations} {.spec.template}{"\\n"}{end}',
  ]);
}

const refused = test.macro(
  async (t, args: string[], expected: Partial<TpErrorJson>, env: NodeJS.ProcessEnv = {}) => {
    const before = await deployments();
    // --json right after the command: anything after a `--` would be docker run's.
    const [command = '', ...rest] = args;
    const r = await tpLab([command, '--json', ...rest], { TP_SESSION: name, ...env });
    const err = json<{ error: TpErrorJson }>(r).error;
    t.like(err, expected);
    t.is(r.exitCode, err.exitCode);
    t.notRegex(r.stdout + r.stderr, /\n\s+at /, 'no stack trace');
    t.is(await deployments(), before, 'no workload changed');
  },
);

test.serial('an unknown workload', refused, ['replace', 'nope'], { code: 'WORKLOAD_UNKNOWN' });
test.serial('several containers and no --container', refused, ['replace', 'two'], {
  code: 'CONTAINER_AMBIGUOUS',
});
test.serial('an unknown --container', refused, ['replace', 'two', '--container', 'nope'], {
  code: 'CONTAINER_UNKNOWN',
});
test.serial(
  'a port name the container lacks',
  refused,
  ['replace', 'echo', '--port', '9:metrics'],
  {
    code: 'PORT_UNKNOWN',
  },
);
test.serial('a workload scaled to zero', refused, ['replace', 'idle'], {
  code: 'WORKLOAD_SCALED_TO_ZERO',
});
test.serial('a bare pod', refused, ['replace', 'pod/bare'], { code: 'WORKLOAD_KIND' });
test.serial('a Job', refused, ['ingest', 'job/once'], { code: 'WORKLOAD_KIND' });
test.serial(
  'not connected: a session that does not exist',
  refused,
  ['ingest', 'echo'],
  { category: 'state' },
  {
    TP_SESSION: 'no-such-session',
  },
);
test.serial(
  'an image for --docker-run that is not here',
  refused,
  ['replace', 'echo', '--docker-run', '--', 'tp-e2e/no-such-image:1'],
  { code: 'IMAGE_NOT_FOUND' },
);
test.serial(
  'an env file in a folder that cannot be written',
  refused,
  ['ingest', 'echo', '--env-file', '/proc/no-such-dir/echo.env'],
  { code: 'ENV_FILE_UNWRITABLE' },
);

test.serial('a local port another engagement of the session takes', async (t) => {
  const first = await tpLab(['replace', 'echo', '--use', name, '--json']);
  t.is(first.exitCode, 0, first.stderr);
  t.teardown(async () => {
    await tpLab(['leave', 'echo', '--use', name]);
  });
  const before = await kubectlOk([
    '-n',
    ns,
    'get',
    'deploy',
    'two',
    '-o',
    'jsonpath={.spec.template}',
  ]);
  const r = await tpLab(['replace', 'two', '--container', 'web', '--use', name, '--json']);
  t.like(json<{ error: TpErrorJson }>(r).error, { code: 'LOCAL_PORT_TAKEN' });
  t.is(
    await kubectlOk(['-n', ns, 'get', 'deploy', 'two', '-o', 'jsonpath={.spec.template}']),
    before,
  );
});
