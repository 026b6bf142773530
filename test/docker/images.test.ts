import test from 'ava';
import { silentProgress } from '../../src/cli/progress.js';
import { baseImages, ensureImage, imageStatus } from '../../src/images/images.js';
import { collectFiles } from '../../src/images/context.js';
import { stageProductionDeps } from '../../src/images/deps.js';
import { imageContext, stagedPackages } from '../../src/images/recipes.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { clientVersion } from '../../src/lib/package-info.js';
import { engine, testLabels, testSession } from '../helpers/docker.js';

test('the base images resolve by their Docker Hub names', async (t) => {
  for (const ref of Object.values(baseImages)) {
    t.truthy(await engine.imageInfo(ref), `${ref} missing: run sudo lab/up`);
  }
});

test('both images build from the package and are then current', async (t) => {
  for (const component of ['daemon', 'agent'] as const) {
    const built = await ensureImage(engine, component, silentProgress);
    t.true(built.current);
    const status = await imageStatus(engine, component);
    t.like(status, { present: true, current: true, version: clientVersion() });
  }
});

test('each image starts, logs its version and stays up', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const cases = [
    {
      component: 'daemon',
      cmd: ['sh', '-c', 'node /app/dist/src/daemon/main.js & sleep 2; kill -0 $! && echo still-up'],
    },
    {
      component: 'agent',
      cmd: [
        'sh',
        '-c',
        'node /app/dist/agent/main.js manager & sleep 2; kill -0 $! && echo still-up',
      ],
    },
  ] as const;
  for (const c of cases) {
    const { ref } = await ensureImage(engine, c.component, silentProgress);
    const result = await engine.runToCompletion({
      image: ref,
      entrypoint: [],
      cmd: [...c.cmd],
      labels: testLabels(session),
      networkMode: 'none',
    });
    t.is(result.exitCode, 0, result.stderr);
    const [first] = result.stdout.split('\n');
    t.like(JSON.parse(first ?? '{}'), { version: clientVersion() });
    t.regex(result.stdout, /still-up/);
  }
});

test('the agent role runs in its image as an unprivileged uid, answers its probe and stops on SIGTERM', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const { ref } = await ensureImage(engine, 'agent', silentProgress);
  // Port 80 as a uid with no capability: a pod's engaged ports are often below 1024.
  const config = JSON.stringify({
    container: 'app',
    ports: [
      { port: 80, protocol: 'TCP' },
      { port: 53, protocol: 'UDP' },
    ],
    mounts: [{ path: '/app/dist', readOnly: true }],
    ownEnv: ['NODE_VERSION', 'YARN_VERSION', 'NODE_ENV'],
  });
  const script = [
    'setpriv --reuid=12345 --regid=12345 --clear-groups node /app/dist/agent/main.js agent "$1" &',
    'sleep 2',
    'node /app/dist/agent/main.js probe && echo probe-ok',
    'kill -TERM $!; wait $!; echo "exit=$?"',
  ].join('\n');
  const result = await engine.runToCompletion({
    image: ref,
    entrypoint: [],
    cmd: ['sh', '-c', script, 'sh', config],
    labels: testLabels(session),
    networkMode: 'none',
  });
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /"msg":"tp agent listening"/);
  t.regex(result.stdout, /probe-ok/);
  t.regex(result.stdout, /"msg":"tp agent stopped"/);
  t.regex(result.stdout, /exit=0/);
});

test('the agent image holds its context and its packages, nothing more: no source maps', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const { ref } = await ensureImage(engine, 'agent', silentProgress);
  const result = await engine.runToCompletion({
    image: ref,
    entrypoint: [],
    cmd: ['sh', '-c', 'cd /app && find . -type f | sort'],
    labels: testLabels(session),
    networkMode: 'none',
  });
  t.is(result.exitCode, 0, result.stderr);
  const context = await imageContext('agent');
  const stage = await stageProductionDeps(context.root, silentProgress);
  // The Dockerfile copies deps/node_modules to node_modules.
  const packages = collectFiles(stagedPackages(stage, context.packages)).map((f) =>
    f.path.replace(/^deps\//, ''),
  );
  const expected = [...context.files.map((f) => f.path), ...packages]
    .map((p) => `./${p}`)
    .filter((p) => !p.startsWith('./containers/'))
    .sort();
  t.deepEqual(result.stdout.trim().split('\n'), expected);
});
