import test from 'ava';
import { connect as h2connect } from 'node:http2';
import { createHash } from 'node:crypto';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { engine, testLabels, testSession } from '../helpers/docker.js';
import { inPod, kubectlOk, portForward } from '../helpers/kubectl.js';

interface EchoReply {
  pod: string;
  method: string;
  path: string;
  proto: string;
  env: Record<string, string>;
}

/** The echo sample's JSON reply. */
const echo = (text: string): EchoReply & { local: string; headers: Record<string, string[]> } =>
  JSON.parse(text) as EchoReply & { local: string; headers: Record<string, string[]> };

async function clusterIP(svc: string): Promise<string> {
  return kubectlOk(['-n', 'samples', 'get', 'svc', svc, '-o', 'jsonpath={.spec.clusterIP}']);
}

async function podIPs(selector: string): Promise<Partial<Record<string, string>>> {
  const out = await kubectlOk([
    '-n',
    'samples',
    'get',
    'pods',
    '-l',
    selector,
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.status.podIP}{"\\n"}{end}',
  ]);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  );
}

test('the node is Ready and reports the version it was built as', async (t) => {
  const node = JSON.parse(await kubectlOk(['get', 'node', 'tp-lab', '-o', 'json'])) as {
    status: {
      conditions: { type: string; status: string }[];
      nodeInfo: { kubeletVersion: string };
    };
  };
  t.is(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
  t.regex(node.status.nodeInfo.kubeletVersion, /^v1\.\d+\.\d+$/);
});

test('from a pod, a service resolves by short name, svc.ns and FQDN to its ClusterIP, which answers', async (t) => {
  const ip = await clusterIP('echo');
  t.regex(ip, /^198\.18\.(1[2-9]\d|2[0-5]\d)\.\d+$/, 'service addresses are in 198.18.128.0/17');
  for (const name of [
    'echo',
    'echo.samples',
    'echo.samples.svc',
    'echo.samples.svc.cluster.local',
  ]) {
    t.is((await inPod('deploy/worker', ['resolve', name])).trim(), ip, name);
  }
  const reply = echo(await inPod('deploy/worker', ['get', `http://${ip}/hello`]));
  t.like(reply, { method: 'GET', path: '/hello' });
  t.regex(reply.pod, /^echo-/);
});

test('StatefulSet pods resolve by name through their headless service', async (t) => {
  const ips = await podIPs('app=store');
  t.truthy(ips['store-0'] && ips['store-1']);
  t.is((await inPod('deploy/worker', ['resolve', 'store-0.store'])).trim(), String(ips['store-0']));
  t.is(
    (await inPod('deploy/worker', ['resolve', 'store-1.store.samples.svc.cluster.local'])).trim(),
    String(ips['store-1']),
  );
  const reply = echo(await inPod('deploy/worker', ['get', 'http://store-1.store:8080/']));
  t.is(reply.pod, 'store-1');
});

test('kubectl port-forward from the host reaches echo over HTTP/1.1 and h2c', async (t) => {
  await using pf = await portForward('samples', 'svc/echo', 80);
  const res = await fetch(`http://127.0.0.1:${pf.port}/via-port-forward`, {
    headers: { 'x-lab': 'yes' },
  });
  const reply = echo(await res.text());
  t.like(reply, {
    path: '/via-port-forward',
    proto: 'HTTP/1.1',
    env: { GREETING: 'hello from the cluster' },
  });
  t.deepEqual(reply.headers['X-Lab'], ['yes']);

  // The session must end before the port-forward does, or its socket is reset under it.
  const session = h2connect(`http://127.0.0.1:${pf.port}`);
  const sessionError = new Promise<never>((_, reject) => session.once('error', reject));
  let body: string;
  try {
    body = await Promise.race([
      sessionError,
      new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/h2c' });
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => {
          data += c;
        });
        req.on('end', () => {
          resolve(data);
        });
        req.on('error', reject);
      }),
    ]);
  } finally {
    session.close();
  }
  t.like(echo(body), { path: '/h2c', proto: 'HTTP/2.0' });
});

test('tcp-echo and udp-echo echo from another pod', async (t) => {
  t.is(
    (await inPod('deploy/worker', ['tcp', 'tcp-echo:9000', 'ping over tcp'])).trim(),
    'ping over tcp',
  );
  t.is(
    (await inPod('deploy/worker', ['udp', 'udp-echo:9001', 'ping over udp'])).trim(),
    'ping over udp',
  );
});

test('multi serves by named and by numeric targetPort, from both of its containers', async (t) => {
  const web = echo(await inPod('deploy/worker', ['get', 'http://multi-named/']));
  t.regex(web.local, /:8080$/);
  const admin = echo(await inPod('deploy/worker', ['get', 'http://multi-named:8081/']));
  t.regex(admin.local, /:8081$/);
  t.is((await inPod('deploy/worker', ['tcp', 'multi-numeric:9000', 'sidecar'])).trim(), 'sidecar');
});

test('volumes sees its ConfigMap, Secret and downward-API env and its four mounts', async (t) => {
  const reply = echo(await inPod('deploy/worker', ['get', 'http://volumes/']));
  t.like(reply.env, {
    APP_MODE: 'lab',
    DB_PASSWORD: 's3cret',
    TOKEN: 'lab-token',
    SETTINGS: 'color: blue\n',
    MEMORY_LIMIT: String(64 * 1024 * 1024),
  });
  t.is(reply.env.POD_NAME, reply.pod);
  t.regex(reply.env.POD_IP ?? '', /^198\.18\.0\.\d+$/);
  t.is(
    await inPod('deploy/worker', ['get', 'http://volumes/fs?path=/etc/config/settings.yaml']),
    'color: blue\n',
  );
  t.is(
    await inPod('deploy/worker', ['get', 'http://volumes/fs?path=/etc/secret/token']),
    'lab-token',
  );
  const mounts = await inPod('deploy/volumes', [
    'get',
    'http://localhost:8080/fs?path=/proc/self/mounts',
  ]);
  t.regex(mounts, / \/scratch /);
  t.regex(mounts, / \/data /);
});

test('worker consumes work from echo and logs it', async (t) => {
  const logs = await kubectlOk(['-n', 'samples', 'logs', 'deploy/worker', '--tail=20']);
  t.regex(logs, /consumed job \d+ from echo-/);
});

test('bulk streams the bytes asked for and hashes uploads', async (t) => {
  await using pf = await portForward('samples', 'svc/bulk', 80);
  const res = await fetch(`http://127.0.0.1:${pf.port}/bytes?n=1048576`);
  t.is((await res.arrayBuffer()).byteLength, 1048576);
  const upload = Buffer.alloc(256 * 1024, 7);
  const up = await fetch(`http://127.0.0.1:${pf.port}/upload`, { method: 'POST', body: upload });
  t.deepEqual(await up.json(), {
    bytes: upload.length,
    sha256: createHash('sha256').update(upload).digest('hex'),
  });
});

test('a Docker container reaches the API server but no pod or service address', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const [podIP] = Object.values(await podIPs('app=echo'));
  const svcIP = await clusterIP('echo');
  // Node's net module is in the node base image: connect and report how it went.
  const probe = `const net=require('net');const [h,p]=process.argv.slice(1);const s=net.connect({host:h,port:+p,timeout:4000});s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(1)});s.on('error',e=>{console.log(e.code);process.exit(1)});`;
  const run = async (host: string, port: number) =>
    (
      await engine.runToCompletion({
        image: 'node:20-bookworm-slim',
        cmd: ['node', '-e', probe, host, String(port)],
        labels: testLabels(session),
      })
    ).stdout.trim();
  t.is(await run('198.19.0.1', 6443), 'connected', 'the API server on the Docker gateway');
  t.is(await run(podIP ?? '', 8080), 'ECONNREFUSED', 'a pod address');
  t.is(await run(svcIP, 80), 'ECONNREFUSED', 'a service address');
});
