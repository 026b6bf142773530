/**
 * Write-back without Docker or a cluster: what a walk finds changed, the agent's `write`
 * (inside the mount only, read-only mounts refused), and the sync role sending local writes
 * through the daemon's control route to a loopback agent, as it does from its helper.
 */
import test, { type ExecutionContext } from 'ava';
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { buffer } from 'node:stream/consumers';
import { parseWriteRequest } from '../../src/contract/control.js';
import { Engagements } from '../../src/daemon/engagements.js';
import { diff, scan, type Entry, type Snapshot } from '../../src/daemon/writeback/scan.js';
import { batches, startSync } from '../../src/daemon/writeback/sync.js';
import { engagementLines } from '../../src/render/session.js';
import { parseAgentRequest } from '../../src/tunnel/agent-protocol.js';
import { agentWrite } from '../../src/tunnel/agent-client.js';
import { daemonControl, dial, loopbackAgent } from './agent-fixture.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tp-writeback-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const file = (size: number, mtimeMs: number, mode = 0o644): Entry => ({
  type: 'file',
  size,
  mtimeMs,
  mode,
});
const folder: Entry = { type: 'directory', size: 0, mtimeMs: 0, mode: 0o755 };

test('a diff sends new and changed entries, parents first, and deletes only the top of what went', (t) => {
  const before: Snapshot = new Map([
    ['a.txt', file(1, 1)],
    ['same.txt', file(2, 2)],
    ['gone', folder],
    ['gone/x', file(1, 1)],
    ['mode.sh', file(3, 3)],
  ]);
  const after: Snapshot = new Map([
    ['a.txt', file(5, 9)],
    ['same.txt', file(2, 2)],
    ['mode.sh', file(3, 3, 0o755)],
    ['new', folder],
    ['new/y', file(1, 1)],
  ]);
  t.deepEqual(diff(before, after), {
    send: ['a.txt', 'mode.sh', 'new', 'new/y'],
    deletes: ['gone'],
  });
  t.deepEqual(diff(after, after), { send: [], deletes: [] });
});

test('a walk records files, folders and links without following links, folders with no mtime', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'f'), 'abc');
  await symlink('/etc', join(dir, 'link'));
  const snap = await scan(dir);
  t.deepEqual([...snap.keys()], ['link', 'sub', 'sub/f']);
  t.is(snap.get('link')?.target, '/etc');
  t.is(snap.get('sub')?.mtimeMs, 0);
  t.is(snap.get('sub/f')?.size, 3);
});

test('sends are cut in batches of at most half the upload limit; a larger file goes alone', (t) => {
  const big = 40 * 1024 * 1024;
  const sizes: Record<string, number> = { a: 10, b: big, c: 10, d: big, e: 1 };
  t.deepEqual(
    batches(Object.keys(sizes), (r) => sizes[r] ?? 0),
    [['a'], ['b'], ['c'], ['d'], ['e']],
  );
  t.deepEqual(
    batches(['x', 'y'], () => 1),
    [['x', 'y']],
  );
});

test('write requests and their deletes must stay inside the mount', (t) => {
  t.deepEqual(parseAgentRequest('{"op":"write","path":"/data","deletes":["a/b"]}'), {
    op: 'write',
    path: '/data',
    deletes: ['a/b'],
  });
  for (const bad of ['../x', '/abs', 'a//b', 'a/./b', '']) {
    t.throws(() => parseAgentRequest(JSON.stringify({ op: 'write', path: '/d', deletes: [bad] })));
    t.throws(() => parseWriteRequest({ workload: 'w', path: '/d', deletes: [bad] }));
  }
});

function tarOf(
  entries: { name: string; body?: string; type?: 'symlink' | 'directory'; linkname?: string }[],
): Promise<Buffer> {
  const p = pack();
  for (const e of entries) {
    p.entry(
      {
        name: e.name,
        type: e.type ?? 'file',
        mode: 0o640,
        ...(e.linkname ? { linkname: e.linkname } : {}),
      },
      e.body ?? '',
    );
  }
  p.finalize();
  return buffer(p);
}

test('the agent writes a tar into a writable mount after removing what was deleted', async (t) => {
  const mount = await tempDir(t);
  await writeFile(join(mount, 'old.txt'), 'old');
  await mkdir(join(mount, 'olddir'));
  await writeFile(join(mount, 'olddir', 'x'), 'x');
  await using agent = await loopbackAgent({ mounts: [{ path: mount, readOnly: false }] });
  const written = await agentWrite(
    await dial(agent.port),
    { path: mount, deletes: ['old.txt', 'olddir', 'never-there'] },
    await tarOf([
      { name: 'notes', type: 'directory' },
      { name: 'notes/a.txt', body: 'hello' },
      { name: 'link', type: 'symlink', linkname: 'notes/a.txt' },
    ]),
  );
  t.deepEqual(written, { files: 1, bytes: 5, deleted: 2 });
  t.is(await readFile(join(mount, 'notes', 'a.txt'), 'utf8'), 'hello');
  t.is((await stat(join(mount, 'notes', 'a.txt'))).mode & 0o777, 0o640);
  t.is(await readlink(join(mount, 'link')), 'notes/a.txt');
  t.is(await lstat(join(mount, 'old.txt')).catch(() => undefined), undefined);
  t.is(await lstat(join(mount, 'olddir')).catch(() => undefined), undefined);
});

test('the agent refuses writes to a read-only mount, an unknown path, and through a link out of the mount', async (t) => {
  const mount = await tempDir(t);
  const frozen = await tempDir(t);
  const outside = await tempDir(t);
  await symlink(outside, join(mount, 'out'));
  await using agent = await loopbackAgent({
    mounts: [
      { path: mount, readOnly: false },
      { path: frozen, readOnly: true },
    ],
  });
  const tar = await tarOf([{ name: 'x', body: 'x' }]);
  const ro = await t.throwsAsync(
    agentWrite(await dial(agent.port), { path: frozen, deletes: [] }, tar),
  );
  t.regex(ro.message, /read-only/);
  const unknown = await t.throwsAsync(
    agentWrite(await dial(agent.port), { path: '/elsewhere', deletes: [] }, tar),
  );
  t.regex(unknown.message, /not a mount/);
  await t.throwsAsync(
    agentWrite(
      await dial(agent.port),
      { path: mount, deletes: [] },
      await tarOf([{ name: 'out/evil', body: 'x' }]),
    ),
  );
  await t.throwsAsync(
    agentWrite(await dial(agent.port), { path: mount, deletes: ['out/victim'] }, await tarOf([])),
  );
  t.is(await lstat(join(outside, 'evil')).catch(() => undefined), undefined);
  t.is(await lstat(join(frozen, 'x')).catch(() => undefined), undefined);
});

test('the sync role sends local writes, deletions and links (as links) through the daemon to every pod, and what is unsent when stopped', async (t) => {
  const local = await tempDir(t);
  const podA = await tempDir(t);
  await writeFile(join(local, 'kept.txt'), 'copied from the pod');
  await writeFile(join(podA, 'kept.txt'), 'copied from the pod');
  await writeFile(join(local, 'doomed.txt'), 'x');
  await writeFile(join(podA, 'doomed.txt'), 'x');
  await using agent = await loopbackAgent({ mounts: [{ path: podA, readOnly: false }] });
  const engagements = new Engagements(() => dial(agent.port));
  await engagements.start({
    workload: 'deployment/app',
    namespace: 'ns',
    mode: 'replace',
    container: 'app',
    pods: ['app-0'],
    ports: [],
  });
  t.teardown(() => engagements.stop());
  await using server = await daemonControl(engagements);
  const syncer = await startSync({
    workload: 'deployment/app',
    mounts: [{ path: podA, dir: local }],
    controlPort: server.port,
    secret: 'secret',
    pollMs: 60_000, // inotify alone must notice
  });
  t.teardown(() => syncer.stop());
  const start = Date.now();
  await mkdir(join(local, 'd'));
  await writeFile(join(local, 'd', 'new.txt'), 'written locally');
  await rm(join(local, 'doomed.txt'));
  const arrived = async (): Promise<boolean> =>
    (await readFile(join(podA, 'd', 'new.txt'), 'utf8').catch(() => '')) === 'written locally' &&
    (await lstat(join(podA, 'doomed.txt')).catch(() => undefined)) === undefined;
  while (!(await arrived())) {
    if (Date.now() - start > 2000) t.fail('not written back within 2 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  t.log(`written back after ${Date.now() - start} ms`);
  t.is(await readFile(join(podA, 'kept.txt'), 'utf8'), 'copied from the pod');

  // A link stays a link in the pod, not a copy of what it points at.
  await symlink('kept.txt', join(local, 'alias'));
  const linkStart = Date.now();
  while ((await readlink(join(podA, 'alias')).catch(() => '')) !== 'kept.txt') {
    if (Date.now() - linkStart > 2000) t.fail('the link was not written back within 2 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true((await lstat(join(podA, 'alias'))).isSymbolicLink());

  // Written just before the stop: the stop sends it.
  await writeFile(join(local, 'last.txt'), 'last words');
  await syncer.stop();
  t.is(await readFile(join(podA, 'last.txt'), 'utf8'), 'last words');
});

test('tp status lists an engagement’s env files and mounts as the CLI described them to the daemon', async (t) => {
  const engagements = new Engagements(() => Promise.reject(new Error('no agent in this test')));
  await engagements.start({
    workload: 'deployment/notes',
    namespace: 'ns',
    mode: 'replace',
    container: 'app',
    pods: ['notes-1'],
    ports: [{ port: 8080, protocol: 'TCP', local: 9090, name: 'http' }],
  });
  t.teardown(() => engagements.stop());
  t.throws(() => engagements.describe({ workload: 'deployment/other', mounts: [] }));
  const status = engagements.describe({
    workload: 'deployment/notes',
    envFile: '/tmp/notes.env',
    mounts: [
      { path: '/data', volume: 'v-data', readOnly: false, writtenBack: true },
      { path: '/etc/config', volume: 'v-config', readOnly: true, writtenBack: false },
      { path: '/etc/one', readOnly: true, writtenBack: false },
    ],
  });
  t.deepEqual(engagementLines(status), [
    'container app; 1 pod: notes-1',
    'ports 8080/tcp -> 9090 (http); 0 connections, 0 refused locally',
    'env file /tmp/notes.env',
    'mount /data -> v-data (written back)',
    'mount /etc/config -> v-config (read-only)',
    'mount /etc/one -> (not in Docker) (read-only)',
  ]);
});
