/**
 * The agent role on loopback: its requests (info, tar, accept), its health port and its
 * lifecycle. Plain TCP connections to its port stand in for the port-forwards the daemon
 * opens in a cluster; engaged ports listen on 127.0.0.1 instead of all interfaces.
 */
import test from 'ava';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { appEnv } from '../../agent/agent.js';
import { probeHealth } from '../../agent/health.js';
import { agentInfo, agentRequest, agentTar } from '../../src/tunnel/agent-client.js';
import { parseAgentConfig, parseAgentRequest } from '../../src/tunnel/agent-protocol.js';
import { readLine } from '../../src/tunnel/protocol.js';
import { dial, freePort, loopbackAgent } from './agent-fixture.js';

interface TarEntry {
  type: string;
  content?: string;
  linkname?: string;
}

async function readTar(tar: Readable): Promise<Record<string, TarEntry>> {
  const entries: Record<string, TarEntry> = {};
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      const e: TarEntry = { type: header.type };
      if (header.type === 'file') e.content = Buffer.concat(chunks).toString();
      if (header.type === 'symlink') e.linkname = header.linkname;
      entries[header.name.replace(/\/$/, '')] = e;
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  tar.pipe(ex);
  await done;
  return entries;
}

/** A volume laid out as the kubelet writes a ConfigMap with a nested item path. */
async function configMapVolume(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tp-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const stamp = '..2026_11_28_10_00_00.123456789';
  await mkdir(join(dir, stamp, 'nested'), { recursive: true });
  await writeFile(join(dir, stamp, 'app.properties'), 'color=blue\n');
  await writeFile(join(dir, stamp, 'nested', 'deep.txt'), 'deep\n');
  await symlink(stamp, join(dir, '..data'));
  await symlink('..data/app.properties', join(dir, 'app.properties'));
  await symlink('..data/nested', join(dir, 'nested'));
  return dir;
}

test('info returns the environment less HOSTNAME, PATH and the agent image’s own variables', async (t) => {
  const env = {
    HOSTNAME: 'echo-6d4f9c-abcde',
    PATH: '/usr/local/bin:/usr/bin',
    NODE_VERSION: '20.20.2',
    NODE_ENV: 'production',
    DB_URL: 'postgres://db:5432/app',
    ECHO_SERVICE_HOST: '198.18.64.10',
  };
  const mounts = [{ path: '/etc/app', readOnly: true }];
  await using agent = await loopbackAgent(
    { container: 'echo', ownEnv: ['NODE_VERSION', 'NODE_ENV'], mounts },
    { env },
  );
  const info = await agentInfo(await dial(agent.port));
  t.like(info, { container: 'echo', mounts, ports: [] });
  t.deepEqual(info.env, {
    DB_URL: 'postgres://db:5432/app',
    ECHO_SERVICE_HOST: '198.18.64.10',
  });
  // A variable the pod sets itself is not in ownEnv (src/engage/plan.ts), so it stays.
  t.deepEqual(appEnv({ NODE_ENV: 'development', A: '1' }, []), { NODE_ENV: 'development', A: '1' });
});

test('a tar of a ConfigMap-like volume holds the visible files’ contents, not the ..data links', async (t) => {
  const dir = await configMapVolume(t);
  await symlink('/etc/hostname', join(dir, 'outside'));
  await using agent = await loopbackAgent({ mounts: [{ path: dir, readOnly: true }] });
  const { tar, skipped } = await agentTar(await dial(agent.port), dir);
  t.deepEqual(skipped, []);
  t.deepEqual(await readTar(tar), {
    'app.properties': { type: 'file', content: 'color=blue\n' },
    nested: { type: 'directory' },
    'nested/deep.txt': { type: 'file', content: 'deep\n' },
    // A link out of the mount is all the app has there too.
    outside: { type: 'symlink', linkname: '/etc/hostname' },
  });
});

test('a tar of a folder that is not one of the mounts is refused', async (t) => {
  const dir = await configMapVolume(t);
  await using agent = await loopbackAgent({ mounts: [{ path: dir, readOnly: true }] });
  for (const path of ['/etc', join(dir, 'nested'), `${dir}/../`]) {
    const err = await t.throwsAsync(agentTar(await dial(agent.port), path));
    t.regex(err.message, /not a mount/);
  }
});

test('a tar of a file mount (subPath) holds that one file', async (t) => {
  const dir = await configMapVolume(t);
  const file = join(dir, '..data', 'app.properties');
  await using agent = await loopbackAgent({ mounts: [{ path: file, readOnly: true }] });
  const { tar } = await agentTar(await dial(agent.port), file);
  t.deepEqual(await readTar(tar), { 'app.properties': { type: 'file', content: 'color=blue\n' } });
});

// root reads every file, so only an unprivileged run can see a file left out.
(process.getuid?.() === 0 ? test.skip : test)(
  'a file the agent cannot read is left out of the tar and named in the reply',
  async (t) => {
    const dir = await configMapVolume(t);
    await writeFile(join(dir, 'secret'), 'x');
    await chmod(join(dir, 'secret'), 0);
    await using agent = await loopbackAgent({ mounts: [{ path: dir, readOnly: true }] });
    const { tar, skipped } = await agentTar(await dial(agent.port), dir);
    t.deepEqual(skipped, ['secret']);
    t.false('secret' in (await readTar(tar)));
  },
);

test('a request that is not one is answered with an error', async (t) => {
  await using agent = await loopbackAgent();
  for (const line of ['{"op":"dial","host":"x"}', 'not json', '{"op":"tar","path":"rel"}']) {
    const s = await dial(agent.port);
    s.write(`${line}\n`);
    t.like(JSON.parse(await readLine(s)), { ok: false });
    s.destroy();
  }
});

test('a client of an engaged port that no accept stream takes is reset after the wait', async (t) => {
  const port = await freePort();
  await using _agent = await loopbackAgent(
    { ports: [{ port, protocol: 'TCP' }] },
    { acceptWaitMs: 200 },
  );
  const client = await dial(port);
  const start = Date.now();
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
  t.is(err.code, 'ECONNRESET');
  t.true(Date.now() - start >= 150);
});

test('an accept stream waits for a client and then says where it came from', async (t) => {
  const port = await freePort();
  await using agent = await loopbackAgent({ ports: [{ port, protocol: 'TCP', name: 'http' }] });
  const stream = await dial(agent.port);
  const reply = agentRequest(stream, { op: 'accept' });
  await new Promise((r) => setTimeout(r, 100));
  const client = await dial(port);
  t.like(await reply, { ok: true, conn: { port, protocol: 'TCP' } });
  const r = await reply;
  t.true('conn' in r && r.conn.src === `127.0.0.1:${client.localPort ?? 0}`);
  client.destroy();
  stream.destroy();
});

test('the health port answers GET with 200 ok', async (t) => {
  await using agent = await loopbackAgent();
  const res = await fetch(`http://127.0.0.1:${agent.healthPort}/healthz`);
  t.is(res.status, 200);
  t.is(await res.text(), 'ok');
  t.true(await probeHealth(agent.healthPort));
});

test('stop() is idempotent and frees every port, engaged ones included', async (t) => {
  const tcp = await freePort();
  const udp = await freePort();
  const agent = await loopbackAgent({
    ports: [
      { port: tcp, protocol: 'TCP' },
      { port: udp, protocol: 'UDP' },
    ],
  });
  const waiting = await dial(agent.port);
  waiting.write('{"op":"accept"}\n');
  const client = await dial(tcp);
  client.on('error', () => undefined);
  await Promise.all([agent.stop(), agent.stop()]);
  await agent.stop();
  t.false(await probeHealth(agent.healthPort, '127.0.0.1', 500));
  // Each port can be taken again at once.
  const again = await loopbackAgent(
    {
      ports: [
        { port: tcp, protocol: 'TCP' },
        { port: udp, protocol: 'UDP' },
      ],
    },
    { port: agent.port, healthPort: agent.healthPort },
  );
  t.is(again.port, agent.port);
  await again.stop();
  waiting.destroy();
  client.destroy();
});

test('an engaged port already taken fails the start, naming the port, and leaves nothing behind', async (t) => {
  const port = await freePort();
  const blocker = await loopbackAgent({ ports: [{ port, protocol: 'TCP' }] });
  t.teardown(() => blocker.stop());
  const control = await freePort();
  const err = await t.throwsAsync(
    loopbackAgent({ ports: [{ port, protocol: 'TCP' }] }, { port: control }),
  );
  t.regex(err.message, new RegExp(`TCP port ${port}`));
  // The agent's own port, opened first, was closed again.
  await using again = await loopbackAgent({}, { port: control });
  t.is(again.port, control);
});

test('the agent config and requests are checked before use', (t) => {
  t.like(
    parseAgentConfig(
      '{"container":"c","ports":[{"port":53,"protocol":"UDP"}],"mounts":[],"ownEnv":["NODE_ENV"]}',
    ),
    { container: 'c', ports: [{ port: 53, protocol: 'UDP' }] },
  );
  t.throws(() => parseAgentConfig('{"container":"c","ports":[{"port":0,"protocol":"TCP"}]}'));
  t.throws(() =>
    parseAgentConfig(
      '{"container":"c","ports":[{"port":80,"protocol":"TCP"},{"port":80,"protocol":"TCP"}],"mounts":[],"ownEnv":[]}',
    ),
  );
  t.throws(() => parseAgentRequest('{"op":"tar","path":"etc"}'));
  t.throws(() => parseAgentRequest('[]'));
  t.deepEqual(parseAgentRequest('{"op":"accept","extra":1}'), { op: 'accept' });
});
