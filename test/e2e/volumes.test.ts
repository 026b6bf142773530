/**
 * Volumes of tp ingest and tp replace against the lab, in a namespace of this file's own: a
 * Deployment with a ConfigMap, a Secret, an emptyDir, a downward API volume and the
 * ServiceAccount token. The --docker-run container sees each at its own path with the pod's
 * contents, read-only where the pod has it so (all of them for ingest), and nothing tp
 * created is left once the engagement ends.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngageResult } from '../../src/engage/engage.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { namespaceSession } from '../helpers/engage.js';
import { engine } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { dnsutilsImage, samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab, tpLabBackground } from '../helpers/session.js';

const ns = `tp-e2e-volumes-${randomBytes(3).toString('hex')}`;
const name = sessionName('volumes');
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The emptyDir's large file: the same bytes in every pod, so any pod can be compared. */
const BIG_MIB = 8;
const bigSha = createHash('sha256')
  .update(Buffer.alloc(BIG_MIB * 1024 * 1024, 'tp\n'))
  .digest('hex');

const files = [
  '/etc/config/settings.yaml',
  '/etc/secret/password',
  '/etc/podinfo/name',
  '/etc/podinfo/labels',
  '/scratch/hello.txt',
  `${TOKEN_DIR}/namespace`,
  `${TOKEN_DIR}/token`,
];
const mounts = ['/etc/config', '/etc/secret', '/etc/podinfo', '/scratch', TOKEN_DIR];

const manifest = (): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'app-config', namespace: ns },
        data: { 'settings.yaml': 'color: blue\n' },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'app-secret', namespace: ns },
        stringData: { password: 's3cret' },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'volumes', namespace: ns, labels: { app: 'volumes' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'volumes' } },
          template: {
            metadata: { labels: { app: 'volumes', tier: 'e2e' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              initContainers: [
                {
                  name: 'fill',
                  image: dnsutilsImage(),
                  command: [
                    'sh',
                    '-c',
                    `echo hello from the pod > /scratch/hello.txt && yes tp | head -c ${BIG_MIB * 1024 * 1024} > /scratch/big.bin`,
                  ],
                  volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
                },
              ],
              containers: [
                {
                  name: 'app',
                  image: samplesImage(),
                  args: ['echo', '-listen', ':8080'],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
                  volumeMounts: [
                    { name: 'config', mountPath: '/etc/config' },
                    { name: 'secret', mountPath: '/etc/secret' },
                    { name: 'podinfo', mountPath: '/etc/podinfo' },
                    { name: 'scratch', mountPath: '/scratch' },
                  ],
                },
              ],
              volumes: [
                { name: 'config', configMap: { name: 'app-config' } },
                { name: 'secret', secret: { secretName: 'app-secret' } },
                {
                  name: 'podinfo',
                  downwardAPI: {
                    items: [
                      { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
                      { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
                    ],
                  },
                },
                { name: 'scratch', emptyDir: {} },
              ],
            },
          },
        },
      },
    ],
  });

/** The running pod of the Deployment that has `container` (the engaged one, during an engagement). */
async function podWith(container: string): Promise<string> {
  const list = JSON.parse(
    await kubectlOk(['-n', ns, 'get', 'pods', '-l', 'app=volumes', '-o', 'json']),
  ) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { containers: { name: string }[] };
      status: { phase: string };
    }[];
  };
  const pod = list.items.find(
    (p) =>
      p.metadata.deletionTimestamp === undefined &&
      p.status.phase === 'Running' &&
      p.spec.containers.some((c) => c.name === container),
  );
  if (pod === undefined) throw new Error(`no running pod has a container ${container}`);
  return pod.metadata.name;
}

/** A file as the pod's app container has it (the samples echo serves files at /fs). */
function podFile(pod: string, path: string): Promise<string> {
  return kubectlOk([
    '-n',
    ns,
    'exec',
    pod,
    '-c',
    'app',
    '--',
    '/samples',
    'get',
    `http://localhost:8080/fs?path=${encodeURIComponent(path)}`,
  ]);
}

/**
 * Prints each file (base64, one line each), the big file's sha256 and whether each mount
 * takes a new file, then says DONE and waits to be stopped.
 */
const script = [
  ...files.map((f) => `printf 'file %s %s\\n' ${f} "$(base64 -w0 < ${f})"`),
  `printf 'sha %s\\n' "$(sha256sum < /scratch/big.bin | cut -d' ' -f1)"`,
  ...mounts.map(
    (m) =>
      `if touch ${m}/written-locally 2>/dev/null; then echo "rw ${m}"; else echo "ro ${m}"; fi`,
  ),
  'echo DONE',
  'sleep 300',
].join('\n');

interface Seen {
  files: Record<string, string>;
  sha: string;
  access: Record<string, 'ro' | 'rw'>;
}

function parse(stdout: string): Seen {
  const seen: Seen = { files: {}, sha: '', access: {} };
  for (const line of stdout.split('\n')) {
    const [kind, a = '', b = ''] = line.split(' ');
    if (kind === 'file') seen.files[a] = Buffer.from(b, 'base64').toString('utf8');
    if (kind === 'sha') seen.sha = a;
    if (kind === 'ro' || kind === 'rw') seen.access[a] = kind;
  }
  return seen;
}

/** Runs `tp <mode> volumes --docker-run` with the script until it prints DONE. */
async function runLocally(
  t: import('ava').ExecutionContext,
  mode: 'ingest' | 'replace',
  dockerArgs: string[] = [],
): Promise<{ seen: Seen; stop: () => Promise<{ code: number; stderr: string }> }> {
  const local = `tp-e2e-volumes-${randomBytes(3).toString('hex')}`;
  const { child, output, exited } = tpLabBackground(t, [
    mode,
    'volumes',
    '--use',
    name,
    '--docker-run',
    '--',
    '--name',
    local,
    ...dockerArgs,
    dnsutilsImage(),
    'sh',
    '-c',
    script,
  ]);
  const deadline = Date.now() + 180_000;
  while (!output().stdout.includes('DONE\n')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      const { stdout, stderr } = output();
      throw new Error(`no DONE from the local container:\n${stdout}\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    seen: parse(output().stdout),
    stop: async () => {
      await engine.signal(local, 'SIGKILL');
      return { code: await exited, stderr: output().stderr };
    },
  };
}

async function tpVolumes(): Promise<string[]> {
  const { volumes } = await engine.listLabelled({ [LABEL_SESSION]: name });
  return volumes.map((v) => v.name);
}

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () => manifest(),
  rollouts: ['deploy/volumes'],
});

test.before(() => lab.setUp());

test.after.always(() => lab.tearDown());

test.serial(
  'ingest --docker-run: every mount, the token included, is at its path with the pod’s contents, read-only; leaving removes the copies',
  async (t) => {
    const { seen, stop } = await runLocally(t, 'ingest');
    const pod = await podWith('tp-agent');
    for (const f of files) t.is(seen.files[f], await podFile(pod, f), f);
    t.is(seen.files['/etc/podinfo/name'], pod);
    t.is(seen.files['/scratch/hello.txt'], 'hello from the pod\n');
    t.is(seen.files[`${TOKEN_DIR}/namespace`], ns);
    t.is(seen.sha, bigSha);
    t.deepEqual(seen.access, Object.fromEntries(mounts.map((m) => [m, 'ro'])));
    t.true((await tpVolumes()).length >= mounts.length);

    const { stderr } = await stop();
    t.regex(stderr, /Copying \/scratch/);
    t.regex(stderr, /Restoring deployment\/volumes/);
    t.deepEqual(await tpVolumes(), []);
  },
);

test.serial(
  '--mount <dir> also copies the mounts under the directory; --mount=false copies nothing; tp leave removes the volumes',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-e2e-mount-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const r = await tpLab(['ingest', 'volumes', '--use', name, '--mount', dir, '--json']);
    t.is(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const result = json<EngageResult>(r);
    t.is(result.mountPoint, dir);
    t.deepEqual(result.mounts.map((m) => m.path).sort(), [...mounts].sort());
    t.true(result.mounts.every((m) => m.readOnly && m.bytes > 0));
    t.is(await readFile(join(dir, 'etc/config/settings.yaml'), 'utf8'), 'color: blue\n');
    t.is(await readFile(join(dir, 'scratch/hello.txt'), 'utf8'), 'hello from the pod\n');
    t.is((await stat(join(dir, 'etc/secret/password'))).mode & 0o777, 0o600);
    const copied = result.mounts.map((m) => m.volume).sort();
    t.deepEqual((await tpVolumes()).sort(), copied);
    const big = result.mounts.find((m) => m.path === '/scratch');
    if (big !== undefined) {
      t.log(
        `/scratch: ${(big.bytes / 1048576).toFixed(1)} MiB in ${big.ms} ms = ${(big.bytes / 1048576 / (big.ms / 1000)).toFixed(1)} MiB/s`,
      );
    }

    const left = await tpLab(['leave', 'volumes', '--use', name, '--json']);
    t.is(left.exitCode, 0, left.stderr);
    t.deepEqual(json<{ volumes?: string[] }>(left).volumes?.sort(), copied);
    t.deepEqual(await tpVolumes(), []);

    const none = await tpLab(['ingest', 'volumes', '--use', name, '--mount=false', '--json']);
    t.is(none.exitCode, 0, none.stderr);
    t.deepEqual(json<EngageResult>(none).mounts, []);
    t.deepEqual(await tpVolumes(), []);
    t.is((await tpLab(['leave', 'volumes', '--use', name])).exitCode, 0);
  },
);

// Last, so that the ingest cases do not depend on how a restored replace leaves the fields'
// owners (an ingest right after one once lost the container's image).
test.serial(
  'replace --docker-run: the emptyDir is writable locally, by the pod’s users too; ConfigMap, Secret, downward API and token stay read-only',
  async (t) => {
    // Not root: the emptyDir's own mode (0777 in the pod) must have come along.
    const { seen, stop } = await runLocally(t, 'replace', ['--user', '1000:1000']);
    t.is(seen.files['/etc/config/settings.yaml'], 'color: blue\n');
    t.is(seen.files['/etc/secret/password'], 's3cret');
    t.is(seen.sha, bigSha);
    t.deepEqual(seen.access, {
      '/etc/config': 'ro',
      '/etc/secret': 'ro',
      '/etc/podinfo': 'ro',
      '/scratch': 'rw',
      [TOKEN_DIR]: 'ro',
    });
    await stop();
    t.deepEqual(await tpVolumes(), []);
  },
);
