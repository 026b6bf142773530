/**
 * The layers tp is built in, checked on the built import graph (`dist/`, which the unit tier
 * builds first): the CLI and the daemon share only the contract, the tunnel protocol and the
 * small libraries, never each other's modules, and each program loads only the adapters it
 * needs.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { moduleClosure } from '../../src/images/closure.js';
import { imagePlatform } from '../../src/images/deps.js';
import { lockedClosure, readLockPackages } from '../../src/images/lockfile.js';
import { imageContext } from '../../src/images/recipes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = fileURLToPath(new URL('../../dist', import.meta.url));
const commands = readdirSync(`${dist}/src/commands`)
  .filter((f) => f.endsWith('.js'))
  .map((f) => `src/commands/${f}`);

const under = (files: string[], folder: string): string[] =>
  files.filter((f) => f.startsWith(folder));

test('no CLI command loads a module of the daemon', async (t) => {
  for (const entry of commands) {
    const { files } = await moduleClosure(dist, entry);
    t.deepEqual(under(files, 'src/daemon/'), [], entry);
  }
});

test('the daemon loads no module of the CLI, and neither Docker nor client-node', async (t) => {
  const { files, packages } = await moduleClosure(dist, 'src/daemon/main.js');
  for (const folder of [
    'src/cli/',
    'src/commands/',
    'src/session/',
    'src/docker/',
    'src/render/',
  ]) {
    t.deepEqual(under(files, folder), [], folder);
  }
  t.false(packages.includes('dockerode'));
  t.false(packages.includes('@kubernetes/client-node'));
});

test('the in-cluster agent loads only the tunnel protocol, the small libraries, the engagement plan, raw API access and tar-stream', async (t) => {
  const { files, packages } = await moduleClosure(dist, 'agent/main.js');
  const outside = files.filter(
    (f) => !['agent/', 'src/tunnel/', 'src/lib/', 'src/contract/'].some((p) => f.startsWith(p)),
  );
  // tp-manager's reaper restores as `tp leave` does: the same pure plan (a Service's switch
  // back included), applied through node:https as its ServiceAccount.
  t.deepEqual(outside, [
    'src/engage/agent-container.js',
    'src/engage/plan.js',
    'src/engage/ports.js',
    'src/engage/service-switch.js',
    'src/k8s/in-cluster.js',
    'src/k8s/transport.js',
  ]);
  t.deepEqual(packages, ['tar-stream']);
  // So its image copies tar-stream and tar-stream's own dependencies, and no other package.
  const { packages: copied } = await imageContext('agent', root);
  t.deepEqual(copied, lockedClosure(readLockPackages(root), ['tar-stream'], imagePlatform));
});
