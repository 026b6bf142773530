import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { moduleClosure } from '../../src/images/closure.js';
import { lockedClosure, type LockPackages } from '../../src/images/lockfile.js';
import { TpError } from '../../src/lib/errors.js';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tp-closure-'));
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), content);
  }
  return dir;
}

test('the closure follows static imports, re-exports and literal dynamic imports, and nothing else', async (t) => {
  const root = tree({
    'dist/main.js': [
      "import { a } from './a.js';",
      "export * from './lib/b.js';",
      "export { c } from './c.js';",
      "const d = await import('./d.js');",
      'console.log(import.meta.url, a, d);',
    ].join('\n'),
    'dist/a.js': "import '../dist/lib/b.js'; export const a = 1;",
    'dist/lib/b.js': "export { shared } from '../shared.js';",
    'dist/shared.js': 'export const shared = 1;',
    'dist/c.js': 'export const c = 1;',
    'dist/d.js': 'export default 1;',
    'dist/main.js.map': '{}',
    'dist/unreached.js': "import './a.js';",
  });
  const closure = await moduleClosure(root, 'dist/main.js');
  t.deepEqual(closure.files, [
    'dist/a.js',
    'dist/c.js',
    'dist/d.js',
    'dist/lib/b.js',
    'dist/main.js',
    'dist/shared.js',
  ]);
  t.deepEqual(closure.packages, []);
});

test('bare specifiers become package names and built-ins are left out', async (t) => {
  const root = tree({
    'main.js': [
      "import { readFileSync } from 'node:fs';",
      "import { join } from 'path';",
      "import WebSocket from 'ws';",
      "import { x } from '@scope/pkg/sub/path.js';",
      "export { y } from 'koffi/indirect';",
      "await import('ws');",
    ].join('\n'),
  });
  const closure = await moduleClosure(root, 'main.js');
  t.deepEqual(closure.files, ['main.js']);
  t.deepEqual(closure.packages, ['@scope/pkg', 'koffi', 'ws']);
});

test('an import whose module is known only at run time fails, naming the file and the expression', async (t) => {
  for (const expr of ['import(name)', 'import(`./roles/${role}.js`)']) {
    const root = tree({ 'main.js': "import './a.js';", 'a.js': `await ${expr};` });
    const err = await t.throwsAsync(moduleClosure(root, 'main.js'), { instanceOf: TpError });
    t.is(err.code, 'IMAGE_IMPORT_UNRESOLVABLE');
    t.true(err.message.includes(join(root, 'a.js')), err.message);
    t.true(err.message.includes(expr), err.message);
  }
});

test('an import of a missing module fails, naming the module that imports it', async (t) => {
  const root = tree({ 'main.js': "import './gone.js';" });
  const err = await t.throwsAsync(moduleClosure(root, 'main.js'), { instanceOf: TpError });
  t.is(err.code, 'IMAGE_CONTEXT_MISSING');
  t.regex(err.message, /gone\.js is missing \(imported by main\.js\)/);
});

test('an import that leaves the root or is no package name fails', async (t) => {
  for (const spec of ['../outside.js', '#internal', 'file:///etc/x.js', '/abs.js']) {
    const root = tree({ 'main.js': `import '${spec}';` });
    const err = await t.throwsAsync(moduleClosure(root, 'main.js'), { instanceOf: TpError });
    t.is(err.code, 'IMAGE_IMPORT_UNRESOLVABLE', spec);
  }
});

const linux = { os: 'linux', cpu: 'x64', libc: 'glibc' };

function entry(version: string, extra: object = {}): object {
  return { version, integrity: `sha512-${version}`, ...extra };
}

test('the package closure resolves each dependency from where it is needed, nested first', (t) => {
  const lock = {
    '': { dependencies: { a: '^1', c: '^1', unused: '^1' } },
    'node_modules/a': entry('1.0.0', { dependencies: { b: '^2' } }),
    'node_modules/a/node_modules/b': entry('2.0.0', { dependencies: { '@s/d': '^1' } }),
    'node_modules/b': entry('1.0.0'),
    'node_modules/c': entry('1.0.0', { dependencies: { b: '^1' } }),
    'node_modules/@s/d': entry('1.0.0'),
    'node_modules/unused': entry('1.0.0'),
  } as LockPackages;
  t.deepEqual(lockedClosure(lock, ['a', 'c'], linux), [
    { path: 'node_modules/@s/d', identity: '1.0.0 sha512-1.0.0' },
    { path: 'node_modules/a', identity: '1.0.0 sha512-1.0.0' },
    { path: 'node_modules/a/node_modules/b', identity: '2.0.0 sha512-2.0.0' },
    { path: 'node_modules/b', identity: '1.0.0 sha512-1.0.0' },
    { path: 'node_modules/c', identity: '1.0.0 sha512-1.0.0' },
  ]);
});

test("optional dependencies count only for the images' platform, and optional peers only when installed", (t) => {
  const lock = {
    '': { dependencies: { ffi: '^3' } },
    'node_modules/ffi': entry('3.0.0', {
      optionalDependencies: { 'ffi-linux-x64': '3', 'ffi-darwin-arm64': '3', 'ffi-gone': '3' },
      peerDependencies: { utf: '^5' },
      peerDependenciesMeta: { utf: { optional: true } },
    }),
    'node_modules/ffi-linux-x64': entry('3.0.0', { os: ['linux'], cpu: ['x64'], optional: true }),
    'node_modules/ffi-darwin-arm64': entry('3.0.0', {
      os: ['darwin'],
      cpu: ['arm64'],
      optional: true,
    }),
  } as LockPackages;
  t.deepEqual(
    lockedClosure(lock, ['ffi'], linux).map((p) => p.path),
    ['node_modules/ffi', 'node_modules/ffi-linux-x64'],
  );
});

test('a package the lockfile lacks, or one package.json does not depend on, fails', (t) => {
  const lock = {
    '': { dependencies: { a: '^1' }, devDependencies: { ava: '^6' } },
    'node_modules/a': entry('1.0.0', { dependencies: { gone: '^1' } }),
    'node_modules/ava': entry('6.0.0', { dev: true }),
  } as LockPackages;
  const options = { instanceOf: TpError };
  t.is(t.throws(() => lockedClosure(lock, ['a'], linux), options).code, 'LOCKFILE_INCONSISTENT');
  const undeclared = t.throws(() => lockedClosure(lock, ['ava'], linux), options);
  t.is(undeclared.code, 'IMAGE_UNDECLARED_PACKAGE');
});
