/**
 * Write-back of tp replace against the lab, in a namespace of this file's own: a Deployment
 * whose `app` container (the one replaced) shares an emptyDir and a PVC with a `reader`
 * container that stays in the pod. What the --docker-run container writes, and what it
 * deletes, reaches both volumes in the pod, the reader sees it, and the PVC keeps it after
 * the workload is restored.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { namespaceSession, until } from '../helpers/engage.js';
import { engine } from '../helpers/docker.js';
import { kubectl, kubectlOk } from '../helpers/kubectl.js';
import { dnsutilsImage, samplesImage } from '../helpers/lab.js';
import { sessionName, tpLabBackground } from '../helpers/session.js';

const ns = `tp-e2e-writeback-${randomBytes(3).toString('hex')}`;
const name = sessionName('writeback');
const pv = `${ns}-data`;
// The lab's node is this machine: the PV's folder is readable here, and made writable for
// the pod's users before the pod starts (hostPath volumes take no fsGroup).
const pvDir = `/var/lib/tp-lab/volumes/${ns}`;

const mounts = [
  { name: 'scratch', mountPath: '/scratch' },
  { name: 'data', mountPath: '/data' },
];

const manifest = (): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: pv },
        spec: {
          capacity: { storage: '16Mi' },
          accessModes: ['ReadWriteOnce'],
          storageClassName: '',
          persistentVolumeReclaimPolicy: 'Retain',
          hostPath: { path: pvDir, type: 'Directory' },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: 'data', namespace: ns },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: '',
          volumeName: pv,
          resources: { requests: { storage: '16Mi' } },
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'notes', namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'notes' } },
          template: {
            metadata: { labels: { app: 'notes' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              initContainers: [
                {
                  name: 'seed',
                  image: dnsutilsImage(),
                  command: ['sh', '-c', 'echo seeded > /scratch/seed.txt'],
                  volumeMounts: [mounts[0]],
                },
              ],
              containers: [
                {
                  name: 'app',
                  image: samplesImage(),
                  args: ['echo', '-listen', ':8080'],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
                  volumeMounts: mounts,
                },
                {
                  name: 'reader',
                  image: samplesImage(),
                  args: ['echo', '-listen', ':8081'],
                  volumeMounts: mounts,
                },
              ],
              volumes: [
                { name: 'scratch', emptyDir: {} },
                { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
              ],
            },
          },
        },
      },
    ],
  });

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () => manifest(),
  rollouts: ['deploy/notes'],
});

test.before(async () => {
  await mkdir(pvDir, { recursive: true });
  await chmod(pvDir, 0o777);
  await lab.setUp();
});

test.after.always(async () => {
  await lab.tearDown();
  await kubectl(['delete', 'pv', pv, '--wait=false']);
  await rm(pvDir, { recursive: true, force: true });
});

/** The running pod, not one on its way out, whose app container runs the app (or the agent). */
async function podWith(app: 'app' | 'agent'): Promise<string | undefined> {
  const list = JSON.parse(
    await kubectlOk(['-n', ns, 'get', 'pods', '-l', 'app=notes', '-o', 'json']),
  ) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { containers: { name: string; image: string }[] };
      status: { phase: string };
    }[];
  };
  return list.items.find(
    (p) =>
      p.metadata.deletionTimestamp === undefined &&
      p.status.phase === 'Running' &&
      p.spec.containers.some(
        (c) => c.name === 'app' && (c.image === samplesImage()) === (app === 'app'),
      ),
  )?.metadata.name;
}

/** A file as `container` of the pod reads it (the samples echo serves files at /fs); undefined when absent. */
async function read(
  pod: string,
  container: string,
  port: number,
  path: string,
): Promise<string | undefined> {
  const r = await kubectl([
    '-n',
    ns,
    'exec',
    pod,
    '-c',
    container,
    '--',
    '/samples',
    'get',
    `http://localhost:${port}/fs?path=${encodeURIComponent(path)}`,
  ]);
  return r.exitCode === 0 ? r.stdout : undefined;
}

const script = [
  'echo written locally > /scratch/note.txt',
  'mkdir -p /data/dir',
  'echo persisted > /data/dir/p.txt',
  'rm /scratch/seed.txt',
  'echo DONE',
  'sleep 300',
].join('\n');

test.serial(
  'replace: files written and deleted locally reach the pod’s emptyDir and PVC within 2 s, a container left in the pod sees them, and the PVC keeps them after the restore',
  async (t) => {
    const local = `tp-e2e-writeback-${randomBytes(3).toString('hex')}`;
    const { child, output, exited } = tpLabBackground(t, [
      'replace',
      'notes',
      '--container',
      'app',
      '--use',
      name,
      '--docker-run',
      '--',
      '--name',
      local,
      dnsutilsImage(),
      'sh',
      '-c',
      script,
    ]);
    await until(
      'the local container to write its files',
      () => Promise.resolve(output().stdout.includes('DONE\n') ? true : undefined),
      180_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${output().stdout}\n${output().stderr}`, { cause: err });
    });
    const done = Date.now();
    const pod = await until('the engaged pod', () => podWith('agent'));
    const arrived = async (): Promise<true | undefined> =>
      (await read(pod, 'reader', 8081, '/scratch/note.txt')) === 'written locally\n' &&
      (await read(pod, 'reader', 8081, '/data/dir/p.txt')) === 'persisted\n' &&
      (await read(pod, 'reader', 8081, '/scratch/seed.txt')) === undefined
        ? true
        : undefined;
    await until('the writes in the pod', arrived, 10_000);
    const delay = Date.now() - done;
    // The bound includes three kubectl execs; bench/volumes.ts measures the delay alone.
    t.log(`seen by the reader ${delay} ms after the local container wrote (upper bound)`);
    t.true(delay < 2000 + 3000, `${delay} ms`);
    t.is(await readFile(`${pvDir}/dir/p.txt`, 'utf8'), 'persisted\n');
    t.regex(output().stderr, /\/data -> \S+ \(written back\)/);

    await engine.signal(local, 'SIGKILL');
    t.is(await exited, 137, output().stderr);
    t.is(child.exitCode, 137);
    const restored = await until('the restored pod', () => podWith('app'));
    t.is(await read(restored, 'app', 8080, '/data/dir/p.txt'), 'persisted\n');
    const { containers } = await engine.listLabelled({
      'tp.session': name,
      'tp.component': 'syncer',
    });
    t.deepEqual(containers, []);
  },
);
