/**
 * `tp connect --docker` against the lab cluster: one session for the file, containers joined
 * to it reaching the cluster as a pod in `samples` would, and everything gone after quit.
 */
import test from 'ava';
import type { ConnectResult } from '../../src/session/connect.js';
import type { StatusReport } from '../../src/session/status.js';
import { engine } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { Joined, json, sessionName, tpLab } from '../helpers/session.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';

const name = sessionName();
let joined: Joined;
let echoIP = '';
let echoPodIP = '';

test.before(async () => {
  const r = await tpLab(['connect', '--docker', '-n', 'samples', '--name', name, '--json']);
  if (r.exitCode !== 0) throw new Error(`connect failed: ${r.stdout} ${r.stderr}`);
  const c = json<ConnectResult>(r);
  const daemon = await engine.listLabelled({ [LABEL_SESSION]: name });
  const image = (await engine.client.getContainer(c.container).inspect()).Config.Image;
  joined = new Joined(daemon.containers[0]?.id ?? c.container, image);
  echoIP = (
    await kubectlOk(['-n', 'samples', 'get', 'svc', 'echo', '-o', 'jsonpath={.spec.clusterIP}'])
  ).trim();
  echoPodIP = (
    await kubectlOk([
      '-n',
      'samples',
      'get',
      'pods',
      '-l',
      'app=echo',
      '-o',
      'jsonpath={.items[0].status.podIP}',
    ])
  ).trim();
});

test.after.always(async () => {
  await tpLab(['quit', '--name', name]);
  await engine.removeLabelled({ [LABEL_SESSION]: name });
});

test.serial('a second connect reports the running session and changes nothing', async (t) => {
  const before = await engine.listLabelled({ [LABEL_SESSION]: name });
  const r = await tpLab(['connect', '--docker', '-n', 'samples', '--name', name, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const c = json<ConnectResult>(r);
  t.false(c.created);
  t.like(c, { context: 'tp-lab', namespace: 'samples', server: 'https://127.0.0.1:6443' });
  t.deepEqual(await engine.listLabelled({ [LABEL_SESSION]: name }), before);
});

for (const host of ['echo', 'echo.samples', 'echo.samples.svc', 'echo.samples.svc.cluster.local']) {
  test(`a joined container gets HTTP from samples/echo as ${host}`, async (t) => {
    const r = await joined.run(samplesImage(), ['get', `http://${host}/`]);
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, /hello from the cluster/);
  });
}

test('a joined container gets HTTP from samples/echo by ClusterIP and by pod IP', async (t) => {
  const bySvc = await joined.run(samplesImage(), ['get', `http://${echoIP}/`]);
  t.is(bySvc.exitCode, 0, bySvc.stderr);
  const byPod = await joined.run(samplesImage(), ['get', `http://${echoPodIP}:8080/`]);
  t.is(byPod.exitCode, 0, byPod.stderr);
  t.regex(byPod.stdout, /hello from the cluster/);
});

test('the same request from a container without tp fails: only tp carries it', async (t) => {
  const r = await engine.runToCompletion({
    image: samplesImage(),
    cmd: ['get', `http://${echoIP}/`],
    labels: { 'tp.managed': 'true', 'tp.component': 'test', [LABEL_SESSION]: name },
  });
  t.not(r.exitCode, 0);
});

test('a StatefulSet pod resolves through its headless service, and a single label in the namespace', async (t) => {
  const pod = await joined.run(samplesImage(), ['resolve', 'store-0.store']);
  t.is(pod.exitCode, 0, pod.stderr);
  t.regex(pod.stdout, /^198\.18\.0\.\d+$/m);
  const single = await joined.run(samplesImage(), ['resolve', 'tcp-echo']);
  t.regex(single.stdout, /^198\.18\.(1[2-9]\d|2[0-5]\d)\.\d+$/m);
});

test('10 MB through tcp-echo come back byte-exact', async (t) => {
  const r = await joined.flows(['tcp-echo', 'tcp-echo', '9000', String(10 * 1024 * 1024)]);
  t.like(r, { exact: true, bytes: 10 * 1024 * 1024 });
});

test('a datagram to udp-echo comes back', async (t) => {
  const r = await joined.run(samplesImage(), ['udp', 'udp-echo:9001', 'hello over udp']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /hello over udp/);
});

test('a pod IP answers ping', async (t) => {
  const r = await joined.run(samplesImage(), ['ping', echoPodIP, '2']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /2 received/);
});

test('a closed port on a pod is refused within a second', async (t) => {
  const r = await joined.flows(['tcp-refused', echoPodIP, '1']);
  t.is(r.code, 'ECONNREFUSED');
  t.true(Number(r.ms) < 1000, `refused after ${String(r.ms)} ms`);
});

test('200 concurrent connections to tcp-echo all succeed', async (t) => {
  const r = await joined.flows(['tcp-concurrent', 'tcp-echo', '9000', '200', '4096']);
  t.like(r, { flows: 200, ok: 200 });
});

test("a name outside the cluster goes to the container's previous resolver", async (t) => {
  // The lab's resolver (lab/steps/dns) answers tp-lab.test and nothing else.
  const r = await joined.run(samplesImage(), ['resolve', 'outside.tp-lab.test']);
  t.is(r.exitCode, 0, r.stderr);
  t.is(r.stdout.trim(), '198.18.255.1');
});

test('tp curl runs curl in the session and returns its exit code', async (t) => {
  // Other sessions may exist (benchmarks): TP_SESSION picks this file's.
  const env = { TP_SESSION: name };
  const ok = await tpLab(
    ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', 'http://echo/'],
    env,
  );
  t.is(ok.exitCode, 0, ok.stderr);
  t.is(ok.stdout, '200');
  const refused = await tpLab(['curl', '-sS', `http://${echoPodIP}:1/`], env);
  t.is(refused.exitCode, 7);
});

test('tp status shows the session: cluster, namespace, routes, DNS, manager and tunnel', async (t) => {
  const r = await tpLab(['status', '--name', name, '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const s = json<StatusReport>(r);
  t.true(s.connected);
  t.like(s.status, {
    context: 'tp-lab',
    namespace: 'samples',
    routes: ['198.18.0.0/24', '198.18.128.0/17'],
    subnetSources: { pods: 'node.spec.podCIDRs', services: 'ServiceCIDR' },
    dns: { enabled: true, clusterDomain: 'cluster.local' },
    tunnel: { state: 'ready' },
  });
  const text = await tpLab(['status', '--name', name]);
  t.regex(text.stdout, /Namespace\s+: samples/);
});

test("tp list shows the namespace's workloads and that they are ready to engage", async (t) => {
  const r = await tpLab(['list', '-n', 'samples', '--json']);
  t.is(r.exitCode, 0, r.stderr);
  const list = json<{
    namespace: string;
    workloads: { kind: string; name: string; state: string }[];
  }>(r);
  t.is(list.namespace, 'samples');
  t.like(
    list.workloads.find((w) => w.name === 'echo'),
    { kind: 'Deployment', state: 'ready to engage' },
  );
  t.like(
    list.workloads.find((w) => w.name === 'store'),
    { kind: 'StatefulSet' },
  );
});
