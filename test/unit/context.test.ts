import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { collectFiles, contextTar, hashFiles } from '../../src/images/context.js';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tp-ctx-'));
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), content);
  }
  return dir;
}

test('a context holds the named files sorted, under their prefix, without skipped ones', (t) => {
  const dir = tree({
    'dist/b.js': 'b',
    'dist/a.js': 'a',
    'dist/node_modules/x.js': 'x',
    'other.txt': 'o',
  });
  const files = collectFiles([
    { dir, paths: ['dist'], skip: /(^|\/)node_modules$/ },
    { dir, paths: ['other.txt'], prefix: 'deps' },
  ]);
  t.deepEqual(
    files.map((f) => f.path),
    ['deps/other.txt', 'dist/a.js', 'dist/b.js'],
  );
});

test('the context hash changes with any byte and with the extra identities, and only then', (t) => {
  const a = collectFiles([{ dir: tree({ 'f.js': 'one' }), paths: ['f.js'] }]);
  const b = collectFiles([{ dir: tree({ 'f.js': 'one' }), paths: ['f.js'] }]);
  const c = collectFiles([{ dir: tree({ 'f.js': 'two' }), paths: ['f.js'] }]);
  t.is(hashFiles(a), hashFiles(b));
  t.not(hashFiles(a), hashFiles(c));
  t.not(hashFiles(a, ['deps-1']), hashFiles(a, ['deps-2']));
});

test('the context tar carries every file with its bytes', async (t) => {
  const files = collectFiles([{ dir: tree({ 'x/y.txt': 'hello' }), paths: ['x'] }]);
  const extract = tar.extract();
  const seen: Record<string, string> = {};
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c) => chunks.push(c as Buffer));
    stream.on('end', () => {
      seen[header.name] = Buffer.concat(chunks).toString();
      next();
    });
  });
  const done = new Promise<void>((r) =>
    extract.on('finish', () => {
      r();
    }),
  );
  contextTar(files).pipe(extract);
  await done;
  t.deepEqual(seen, { 'x/y.txt': 'hello' });
});
