// What goes into each image, and so its hash, on a copy of the package: the unit tier's own
// build must not change what `tp connect` thinks the cluster runs (issue 9).
import test, { type ExecutionContext } from 'ava';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imagePlatform } from '../../src/images/deps.js';
import { lockedClosure, readLockPackages } from '../../src/images/lockfile.js';
import { imageContext, type ImageComponent } from '../../src/images/recipes.js';
import { packageRoot } from '../../src/lib/package-info.js';

const components = ['daemon', 'agent'] as const;

/** The package as an installed tp has it, without the repository's build and test litter. */
function copyPackage(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tp-package-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const parts = [
    'package.json',
    'package-lock.json',
    'containers',
    'netstack',
    'dist/src',
    'dist/agent',
  ];
  for (const p of parts) cpSync(join(packageRoot(), p), join(dir, p), { recursive: true });
  return dir;
}

async function hashes(root?: string): Promise<Record<ImageComponent, string>> {
  const [daemon, agent] = await Promise.all(components.map((c) => imageContext(c, root)));
  return { daemon: daemon?.hash ?? '', agent: agent?.hash ?? '' };
}

function write(root: string, path: string, content: string | Buffer): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), content);
}

test("building the unit tier's artefacts leaves both image hashes unchanged", async (t) => {
  const repository = await hashes();
  const root = copyPackage(t);
  // The repository's dist/ has the unit tier's Go library (its pretest built it); the copy not.
  t.deepEqual(await hashes(root), repository);

  // What `npm run build:netstack` writes, different from anything built before, and what a
  // test build or an old tsc run leaves under dist/.
  write(root, 'dist/netstack/libtpnetstack.so', Buffer.from(`ELF ${String(Math.random())}`));
  write(root, 'dist/netstack/libtpnetstack.h', `/* ${String(Math.random())} */`);
  write(root, 'dist/test/x.js', "import '../src/daemon/main.js';");
  appendFileSync(join(root, 'dist/src/tunnel/protocol.js.map'), ' ');
  write(root, 'oclif.manifest.json', '{}');
  t.deepEqual(await hashes(root), repository);
});

test("a module the agent runs changes its hash; a daemon-only module changes only the daemon's", async (t) => {
  const root = copyPackage(t);
  const before = await hashes(root);

  appendFileSync(join(root, 'dist/src/daemon/main.js'), '\n// changed\n');
  const daemonChanged = await hashes(root);
  t.not(daemonChanged.daemon, before.daemon);
  t.is(daemonChanged.agent, before.agent);

  appendFileSync(join(root, 'dist/src/tunnel/protocol.js'), '\n// changed\n');
  const tunnelChanged = await hashes(root);
  t.not(tunnelChanged.agent, before.agent);
  t.not(tunnelChanged.daemon, daemonChanged.daemon);
});

test("the daemon's hash follows the Go sources it builds, not the Go tests, test data or README", async (t) => {
  const root = copyPackage(t);
  const before = await hashes(root);
  appendFileSync(join(root, 'netstack/internal/header/header_test.go'), '\n// changed\n');
  appendFileSync(join(root, 'netstack/testdata/header-vectors.json'), '\n');
  appendFileSync(join(root, 'netstack/README.md'), '\nchanged\n');
  t.deepEqual(await hashes(root), before);

  appendFileSync(join(root, 'netstack/internal/header/header.go'), '\n// changed\n');
  const after = await hashes(root);
  t.not(after.daemon, before.daemon);
  t.is(after.agent, before.agent);
});

test('a dependency neither image uses changes neither hash; one the daemon uses changes only its hash', async (t) => {
  const root = copyPackage(t);
  const before = await hashes(root);
  const edit = (file: string, change: (json: Record<string, Record<string, unknown>>) => void) => {
    const json = JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >;
    change(json);
    writeFileSync(join(root, file), JSON.stringify(json));
  };
  const lockPackages = (lock: Record<string, Record<string, unknown>>) =>
    lock.packages as Record<string, Record<string, unknown>>;

  edit('package.json', (pkg) => {
    pkg.dependencies = { ...pkg.dependencies, 'left-pad': '^1.3.0' };
    pkg.scripts = { ...pkg.scripts, extra: 'true' };
  });
  edit('package-lock.json', (lock) => {
    const packages = lockPackages(lock);
    const rootEntry = packages[''] as { dependencies: Record<string, string> };
    rootEntry.dependencies['left-pad'] = '^1.3.0';
    packages['node_modules/left-pad'] = { version: '1.3.0', integrity: 'sha512-left' };
  });
  t.deepEqual(await hashes(root), before);

  edit('package-lock.json', (lock) => {
    const ws = lockPackages(lock)['node_modules/ws'] as { integrity: string };
    ws.integrity = 'sha512-another';
  });
  const after = await hashes(root);
  t.not(after.daemon, before.daemon);
  t.is(after.agent, before.agent);
});

test('the agent image carries only tar-stream and its dependencies, and the daemon only what it runs', async (t) => {
  const [daemon, agent] = await Promise.all(components.map((c) => imageContext(c)));
  t.deepEqual(
    agent?.packages,
    lockedClosure(readLockPackages(packageRoot()), ['tar-stream'], imagePlatform),
  );
  const agentFiles = agent?.files.map((f) => f.path) ?? [];
  t.true(agentFiles.includes('dist/agent/manager.js'));
  for (const path of agentFiles) {
    t.regex(
      path,
      /^(package\.json|containers\/agent\.Dockerfile|dist\/agent\/(proxy\/)?[\w-]+\.js|dist\/src\/(lib|tunnel|contract)\/[\w-]+\.js|dist\/src\/engage\/(plan|agent-container|ports|service-switch)\.js|dist\/src\/k8s\/(in-cluster|transport)\.js)$/,
    );
  }
  const daemonPackages = daemon?.packages.map((p) => p.path) ?? [];
  t.true(daemonPackages.includes('node_modules/koffi'));
  for (const heavy of ['@kubernetes/client-node', 'dockerode', '@oclif/core', 'es-module-lexer']) {
    t.false(daemonPackages.includes(`node_modules/${heavy}`), heavy);
  }
  t.false(daemon?.files.some((f) => /\.map$|(^|\/)test\/|_test\.go$/.test(f.path)));
});
