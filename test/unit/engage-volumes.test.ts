/**
 * Volumes for replace and ingest without Docker: which mounts are read-only, the -v values,
 * --mount, the host copy, and a mount's tar from a loopback agent through the daemon's
 * route to the CLI's client.
 */
import test, { type ExecutionContext } from 'ava';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pack } from 'tar-stream';
import { appMounts } from '../../agent/agent.js';
import { byteProgress, formatBytes } from '../../src/cli/progress.js';
import type { AgentConfig } from '../../src/contract/agent.js';
import { Engagements, namedWithin } from '../../src/daemon/engagements.js';
import { entryPath, extractTo } from '../../src/engage/host-copy.js';
import { planEngagement } from '../../src/engage/plan.js';
import {
  parseMountFlag,
  planMounts,
  volumeFlags,
  type EngagedMount,
} from '../../src/engage/volumes.js';
import type { Container, WorkloadObject } from '../../src/engage/workload.js';
import { TpError } from '../../src/lib/errors.js';
import { ControlClient } from '../../src/session/control-client.js';
import { FrameType, encodeFrame, finDecoder } from '../../src/tunnel/frames.js';
import { daemonControl, dial, loopbackAgent } from './agent-fixture.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tp-volumes-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const app: Container = {
  name: 'app',
  image: 'app:1',
  volumeMounts: [
    { name: 'config', mountPath: '/etc/config' },
    { name: 'secret', mountPath: '/etc/secret' },
    { name: 'podinfo', mountPath: '/etc/podinfo' },
    { name: 'bundle', mountPath: '/etc/bundle' },
    { name: 'scratch', mountPath: '/scratch' },
    { name: 'data', mountPath: '/data' },
    { name: 'frozen', mountPath: '/frozen', readOnly: true },
  ],
};

const workload: WorkloadObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'volumes', namespace: 'ns' },
  spec: {
    template: {
      spec: {
        containers: [app],
        volumes: [
          { name: 'config', configMap: { name: 'c' } },
          { name: 'secret', secret: { secretName: 's' } },
          { name: 'podinfo', downwardAPI: { items: [] } },
          { name: 'bundle', projected: { sources: [] } },
          { name: 'scratch', emptyDir: {} },
          { name: 'data', persistentVolumeClaim: { claimName: 'd' } },
          { name: 'frozen', emptyDir: {} },
        ],
      },
    },
  },
};

/** The mounts the agent is configured with, as the plan writes them into the pod spec. */
function agentMounts(mode: 'replace' | 'ingest'): AgentConfig['mounts'] {
  const plan = planEngagement(workload, {
    mode,
    session: 's1',
    ports: [],
    agentImage: 'agent:1',
    now: '2026-01-01T00:00:00Z',
  });
  const containers = plan.apply.spec?.template.spec.containers ?? [];
  const agent = containers[0] as { args: string[] };
  return (JSON.parse(agent.args[1] ?? '{}') as AgentConfig).mounts;
}

test('replace: ConfigMap, Secret, downward API and projected mounts are read-only as in the pod; emptyDir and PVC are writable', (t) => {
  t.deepEqual(agentMounts('replace'), [
    { path: '/etc/config', readOnly: true },
    { path: '/etc/secret', readOnly: true },
    { path: '/etc/podinfo', readOnly: true },
    { path: '/etc/bundle', readOnly: true },
    { path: '/scratch', readOnly: false },
    { path: '/data', readOnly: false },
    { path: '/frozen', readOnly: true },
  ]);
});

test('the -v values: read-only where the agent says so, everything read-only for ingest', (t) => {
  const mounts = [
    { path: '/etc/config', readOnly: true },
    { path: '/scratch', readOnly: false },
  ];
  const flags = (mode: 'replace' | 'ingest'): string[] =>
    volumeFlags(
      planMounts(mounts, { mode, session: 'sess', workload: 'deployment/volumes' }).map(
        (m): EngagedMount => ({ ...m, bytes: 0, ms: 0, skipped: [] }),
      ),
    );
  const replace = flags('replace');
  t.regex(replace[0] ?? '', /^sess-volumes-etc-config-[0-9a-f]{6}:\/etc\/config:ro$/);
  t.regex(replace[1] ?? '', /^sess-volumes-scratch-[0-9a-f]{6}:\/scratch$/);
  t.true(flags('ingest').every((f) => f.endsWith(':ro')));
});

test('volume names are Docker names, distinct for paths that read the same once cleaned', (t) => {
  const planned = planMounts(
    [
      { path: '/a-b', readOnly: false },
      { path: '/a/b', readOnly: false },
      { path: '/', readOnly: false },
    ],
    { mode: 'replace', session: 'tp-ctx-ns', workload: 'statefulset/Store_1' },
  );
  const names = planned.map((p) => p.volume);
  t.is(new Set(names).size, 3);
  for (const n of names) t.regex(n, /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/);
});

test('a mount that is not in Docker gets no -v value', (t) => {
  const m: EngagedMount = {
    path: '/etc/app.properties',
    volume: 'v',
    readOnly: true,
    bytes: 3,
    ms: 1,
    skipped: [],
    notMounted: 'one file (a subPath mount): not in Docker volumes',
  };
  t.deepEqual(volumeFlags([m]), []);
});

test('--mount: true and absent copy, false skips, a directory also copies there', async (t) => {
  const dir = await tempDir(t);
  t.deepEqual(parseMountFlag(undefined), { copy: true });
  t.deepEqual(parseMountFlag('true'), { copy: true });
  t.deepEqual(parseMountFlag('false'), { copy: false });
  t.deepEqual(parseMountFlag('mnt', dir), { copy: true, hostDir: join(dir, 'mnt') });
  await writeFile(join(dir, 'file'), '');
  const err = t.throws(() => parseMountFlag('file', dir));
  t.true(err instanceof TpError);
  t.like(err, { code: 'MOUNT_NOT_A_DIRECTORY' });
});

test('the agent adds the ServiceAccount token mount, read-only, unless a configured mount covers it', async (t) => {
  const dir = await tempDir(t);
  const token = join(dir, 'serviceaccount');
  const config = [{ path: '/scratch', readOnly: false }];
  t.deepEqual(appMounts(config, token), config, 'no token folder in the pod');
  await mkdir(token);
  t.deepEqual(appMounts(config, token), [...config, { path: token, readOnly: true }]);
  const covering = [{ path: dir, readOnly: false }];
  t.deepEqual(appMounts(covering, token), covering);
  const same = [{ path: `${token}/`, readOnly: true }];
  t.deepEqual(appMounts(same, token), same);
});

test('a copy’s progress: a bar against the agent’s count, that stops short of full', (t) => {
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(64 * 1024 * 1024), '64.0 MiB');
  t.is(byteProgress(1536, undefined), '1.5 KiB');
  t.is(byteProgress(32, 64, 10), '[#####.....] 50% 32 B of 64 B');
  t.regex(byteProgress(100, 64, 10), /^\[#########\.\] 99% /);
});

test('the skipped names that go in a header stay within its budget, saying how many more', (t) => {
  const names = Array.from({ length: 500 }, (_, i) => `file-${i}`);
  const kept = namedWithin(names, 1000);
  t.true(kept.length < names.length);
  t.is(kept.at(-1), `(and ${names.length - kept.length + 1} more)`);
  t.deepEqual(namedWithin(['a', 'b']), ['a', 'b']);
});

test('host copy: names that would leave the directory are refused', (t) => {
  t.is(entryPath('a/b.txt'), 'a/b.txt');
  t.is(entryPath('./a/'), 'a');
  t.is(entryPath('tp-volume/', 'tp-volume'), undefined);
  t.is(entryPath('tp-volume/x/y', 'tp-volume'), 'x/y');
  for (const bad of ['../x', 'a/../../x', '/etc/passwd'])
    t.throws(() => entryPath(bad), undefined, bad);
  t.throws(() => entryPath('other/x', 'tp-volume'));
});

function tarOf(
  entries: {
    name: string;
    type?: 'file' | 'directory' | 'symlink';
    body?: string;
    mode?: number;
    linkname?: string;
  }[],
): Readable {
  const p = pack();
  for (const e of entries) {
    p.entry(
      {
        name: e.name,
        type: e.type ?? 'file',
        mode: e.mode ?? 0o644,
        ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      },
      e.body ?? '',
    );
  }
  p.finalize();
  return Readable.from(p);
}

test('host copy: files only their owner reads, and links made after every file', async (t) => {
  const dir = join(await tempDir(t), 'etc', 'secret');
  const bytes = await extractTo(
    tarOf([
      { name: 'tp-volume/', type: 'directory', mode: 0o777 },
      { name: 'tp-volume/out', type: 'symlink', linkname: '/tmp' },
      { name: 'tp-volume/token', body: 's3cret', mode: 0o644 },
      { name: 'tp-volume/bin/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
    ]),
    dir,
    'tp-volume',
  );
  t.is(bytes, 16);
  t.is(await readFile(join(dir, 'token'), 'utf8'), 's3cret');
  t.is((await stat(join(dir, 'token'))).mode & 0o777, 0o600);
  t.is((await stat(join(dir, 'bin', 'run.sh'))).mode & 0o777, 0o700);
  t.true((await lstat(join(dir, 'out'))).isSymbolicLink());
  t.is(await readlink(join(dir, 'out')), '/tmp');
  // Copying again over the first copy works (a second ingest into the same directory).
  await extractTo(tarOf([{ name: 'token', body: 'new' }]), dir);
  t.is(await readFile(join(dir, 'token'), 'utf8'), 'new');
});

test('host copy: no entry is written through a link of the tar', async (t) => {
  const root = await tempDir(t);
  const elsewhere = join(root, 'elsewhere');
  await mkdir(elsewhere);
  const tar = tarOf([
    { name: 'out', type: 'symlink', linkname: elsewhere },
    { name: 'out/evil', body: 'x' },
  ]);
  await t.throwsAsync(extractTo(tar, join(root, 'copy')));
  t.is((await lstat(join(elsewhere, 'evil')).catch(() => undefined)) === undefined, true);
});

test('a mount’s tar flows from the agent through the daemon’s route to the client, with the mount point’s mode and size', async (t) => {
  const mount = await tempDir(t);
  await writeFile(join(mount, 'settings.yaml'), 'color: blue\n');
  await mkdir(join(mount, 'sub'));
  await writeFile(join(mount, 'sub', 'big'), Buffer.alloc(100_000, 7));
  await using agent = await loopbackAgent({ mounts: [{ path: mount, readOnly: false }] });
  const engagements = new Engagements(() => dial(agent.port));
  await engagements.start({
    workload: 'deployment/volumes',
    namespace: 'ns',
    mode: 'ingest',
    container: 'app',
    pods: ['volumes-0'],
    ports: [],
  });
  t.teardown(() => engagements.stop());
  await using server = await daemonControl(engagements);
  const client = ControlClient.at(`http://127.0.0.1:${server.port}`, 'secret');
  const answer = await client.stream('POST /v1/engagements/tar', {
    workload: 'deployment/volumes',
    path: mount,
  });
  const st = await stat(mount);
  t.deepEqual(answer.meta, {
    skipped: [],
    size: 100_012,
    root: { file: false, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid },
  });
  const out = await tempDir(t);
  t.is(await extractTo(answer.body, out), 100_012);
  t.is(await readFile(join(out, 'settings.yaml'), 'utf8'), 'color: blue\n');
  t.is((await stat(join(out, 'sub', 'big'))).size, 100_000);

  const refused = await t.throwsAsync(
    client.stream('POST /v1/engagements/tar', { workload: 'deployment/volumes', path: '/etc' }),
  );
  t.regex(refused.message, /not a mount/);
});

test('a tar ends at the agent’s end frame, closing the stream; one cut short before it fails', async (t) => {
  const whole = new PassThrough();
  whole.write(encodeFrame(FrameType.data, Buffer.from('ab')));
  whole.write(
    Buffer.concat([encodeFrame(FrameType.data, Buffer.from('c')), encodeFrame(FrameType.fin)]),
  );
  // The runtime would keep the port-forward open a second longer: the reader does not wait.
  t.is(await text(finDecoder(whole)), 'abc');
  t.true(whole.destroyed);

  const cut = new PassThrough();
  cut.end(encodeFrame(FrameType.data, Buffer.from('partial')));
  await t.throwsAsync(text(finDecoder(cut)), { message: /ended before its end frame/ });
});
