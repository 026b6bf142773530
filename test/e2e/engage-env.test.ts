/**
 * The environment tp ingest hands over, against the lab, in a namespace of this file's own
 * with its own copy of samples/volumes (env, envFrom with and without a prefix, every kind of
 * valueFrom, `$(VAR)` expansion, Service links): variable by variable what the pod's own
 * process reports, in --env-json, --env-file and the --docker-run container alike.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { namespaceSession, until } from '../helpers/engage.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { dnsutilsImage, samplesImage } from '../helpers/lab.js';
import { json, sessionName, tpLab } from '../helpers/session.js';

const ns = `tp-e2e-env-${randomBytes(3).toString('hex')}`;
const name = sessionName('env');
const dir = mkdtempSync(join(tmpdir(), 'tp-e2e-env-'));

const manifest = (image: string): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'volumes-config', namespace: ns },
        data: { APP_MODE: 'lab', 'settings.yaml': 'color: blue\n' },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'volumes-secret', namespace: ns },
        stringData: { DB_PASSWORD: 's3cret', token: 'lab-token' },
      },
      // Before the Deployment, so that its pods get the Service's link variables.
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'volumes', namespace: ns },
        spec: {
          selector: { app: 'volumes' },
          ports: [{ name: 'http', port: 80, targetPort: 'http' }],
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'volumes', namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'volumes' } },
          template: {
            metadata: { labels: { app: 'volumes' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [
                {
                  name: 'app',
                  image,
                  args: ['echo', '-listen', ':8080'],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  envFrom: [
                    { configMapRef: { name: 'volumes-config' } },
                    { secretRef: { name: 'volumes-secret' }, prefix: 'SECRET_' },
                  ],
                  env: [
                    { name: 'ECHO_ENV', value: '*' },
                    // env wins over envFrom.
                    { name: 'APP_MODE', value: 'from-env' },
                    {
                      name: 'TOKEN',
                      valueFrom: { secretKeyRef: { name: 'volumes-secret', key: 'token' } },
                    },
                    {
                      name: 'SETTINGS',
                      valueFrom: {
                        configMapKeyRef: { name: 'volumes-config', key: 'settings.yaml' },
                      },
                    },
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                    {
                      name: 'NODE_NAME',
                      valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } },
                    },
                    {
                      name: 'MEMORY_LIMIT',
                      valueFrom: { resourceFieldRef: { resource: 'limits.memory' } },
                    },
                    {
                      name: 'CPU_REQUEST_MILLIS',
                      valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } },
                    },
                    {
                      name: 'EXPANDED',
                      value: '$(POD_NAME) $(VOLUMES_SERVICE_PORT) $(SECRET_DB_PASSWORD)',
                    },
                    { name: 'ESCAPED', value: '$$(POD_NAME)' },
                    { name: 'UNDEFINED', value: '$(NOT_SET)' },
                  ],
                  resources: {
                    requests: { cpu: '10m', memory: '32Mi' },
                    limits: { memory: '64Mi' },
                  },
                  readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    ],
  });

/** The environment the pod's own process reports (the samples echo with ECHO_ENV='*'). */
async function podEnv(): Promise<Record<string, string>> {
  const out = await kubectlOk([
    '-n',
    'samples',
    'exec',
    'deploy/worker',
    '--',
    '/samples',
    'get',
    `http://volumes.${ns}/`,
  ]);
  return (JSON.parse(out) as { env: Record<string, string> }).env;
}

/**
 * What the app's process has that the agent cannot know, so leaves out: HOSTNAME (the pod's
 * name; the local container has its own), and what the runtime gives the process from its
 * image: PATH, HOME (from the image's user) and the image's own variables (the samples image
 * has none today).
 */
async function notHandedOver(image: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('docker', [
    'image',
    'inspect',
    '--format',
    '{{json .Config.Env}}',
    image,
  ]);
  const own = ((JSON.parse(stdout) as string[] | null) ?? []).map((e) => e.split('=')[0] ?? '');
  return ['HOSTNAME', 'PATH', 'HOME', ...own];
}

/** A Docker env file (`NAME=value` lines, no quoting) as a map. */
function readDockerEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () => manifest(samplesImage()),
  rollouts: ['deploy/volumes'],
});

test.before(() => lab.setUp());

test.after.always(async () => {
  await lab.tearDown();
  rmSync(dir, { recursive: true, force: true });
});

test.serial(
  'ingest --env-json and --env-file hold the pod’s environment, variable by variable, in files only the user reads',
  async (t) => {
    const envJson = join(dir, 'env.json');
    const envFile = join(dir, 'volumes.env');
    const r = await tpLab([
      'ingest',
      'volumes',
      '--use',
      name,
      '--env-json',
      envJson,
      '--env-file',
      envFile,
      '--json',
    ]);
    t.is(r.exitCode, 0, r.stderr);
    t.teardown(() => tpLab(['leave', 'volumes', '--use', name]));
    const result = json<{ pods: string[]; envSkipped: string[] }>(r);
    const handed = JSON.parse(readFileSync(envJson, 'utf8')) as Record<string, string>;

    // The pod that answers is the engaged one (the one before the sidecar may still be going).
    const fromPod = await until('the engaged pod’s answer', async () => {
      const env = await podEnv();
      return result.pods.includes(env.POD_NAME ?? '') ? env : undefined;
    });
    const left = await notHandedOver(samplesImage());
    const expected = Object.fromEntries(Object.entries(fromPod).filter(([k]) => !left.includes(k)));
    t.deepEqual(handed, expected);

    // Each kind of source is there, as Kubernetes resolved it for the pod.
    t.like(handed, {
      APP_MODE: 'from-env',
      'settings.yaml': 'color: blue\n',
      SECRET_DB_PASSWORD: 's3cret',
      SECRET_token: 'lab-token',
      TOKEN: 'lab-token',
      SETTINGS: 'color: blue\n',
      NODE_NAME: 'tp-lab',
      MEMORY_LIMIT: String(64 * 1024 * 1024),
      CPU_REQUEST_MILLIS: '10',
      EXPANDED: `${handed.POD_NAME ?? ''} 80 s3cret`,
      ESCAPED: '$(POD_NAME)',
      UNDEFINED: '$(NOT_SET)',
      VOLUMES_SERVICE_PORT: '80',
      VOLUMES_SERVICE_PORT_HTTP: '80',
      KUBERNETES_SERVICE_PORT: '443',
    });
    t.truthy(handed.VOLUMES_SERVICE_HOST);
    t.truthy(handed.POD_IP);
    t.false('DB_PASSWORD' in handed, 'the prefixed envFrom has only prefixed names');

    // Docker's env-file syntax cannot hold a line break: those are left out, and named.
    const multiLine = Object.keys(expected).filter((k) => /[\r\n]/.test(expected[k] ?? ''));
    t.deepEqual([...result.envSkipped].sort(), multiLine.sort());
    t.true(multiLine.includes('SETTINGS'));
    const dockerEnv = readDockerEnvFile(readFileSync(envFile, 'utf8'));
    t.deepEqual(
      dockerEnv,
      Object.fromEntries(Object.entries(expected).filter(([k]) => !multiLine.includes(k))),
    );
    for (const f of [envJson, envFile]) t.is(statSync(f).mode & 0o777, 0o600, f);
  },
);

test.serial(
  'ingest --docker-run: the container starts with the pod’s environment, line breaks included, and its image’s own',
  async (t) => {
    // bash as PID 1: /proc/1/environ is what Docker started it with, before any shell variable.
    // Then the engaged pod's own view, asked through the session (bash's /dev/tcp).
    const script = [
      'cat /proc/1/environ',
      'printf "\\0--\\0"',
      // The Service may lag the rollout the ingest caused by a moment (endpoints, kube-proxy).
      `for i in $(seq 20); do exec 3<>/dev/tcp/volumes.${ns}/80 2>/dev/null && break; sleep 0.5; done`,
      `printf "GET / HTTP/1.0\\r\\nHost: volumes.${ns}\\r\\n\\r\\n" >&3`,
      'cat <&3',
    ].join('; ');
    const r = await tpLab([
      'ingest',
      'volumes',
      '--use',
      name,
      '--docker-run',
      '--',
      '--entrypoint',
      'bash',
      dnsutilsImage(),
      '-c',
      script,
    ]);
    t.is(r.exitCode, 0, r.stderr);
    const [environ = '', response = ''] = r.stdout.split('\0--\0');
    const inContainer: Record<string, string> = {};
    for (const entry of environ.split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) inContainer[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const body = response.slice(response.indexOf('\r\n\r\n') + 4);
    const fromPod = (JSON.parse(body) as { env: Record<string, string> }).env;
    const left = await notHandedOver(samplesImage());
    // The local image's own: Docker gives the container HOSTNAME, HOME and a default PATH.
    const ownLocal = ['HOSTNAME', 'HOME', 'PATH', ...(await notHandedOver(dnsutilsImage()))];
    t.deepEqual(
      Object.fromEntries(Object.entries(inContainer).filter(([k]) => !ownLocal.includes(k))),
      Object.fromEntries(Object.entries(fromPod).filter(([k]) => !left.includes(k))),
    );
    t.is(inContainer.SETTINGS, 'color: blue\n');
    t.is(inContainer.HOME, '/root', 'HOME is the local image’s user’s, not the agent’s');
  },
);
