import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkWritable, dockerEnvFile, jsonEnvFile, writePrivate } from '../../src/engage/env.js';
import { TpError } from '../../src/lib/errors.js';

test('the env file is Docker’s syntax, sorted; multi-line values are left out and named', (t) => {
  const r = dockerEnvFile({ B: 'two words', A: 'x=y', PEM: 'line1\nline2', EMPTY: '' });
  t.is(r.text, 'A=x=y\nB=two words\nEMPTY=\n');
  t.deepEqual(r.skipped, ['PEM']);
  t.deepEqual(JSON.parse(jsonEnvFile({ PEM: 'line1\nline2' })), { PEM: 'line1\nline2' });
});

test('env files are written readable by their owner only', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tp-env-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'app.env');
  writePrivate(file, 'A=1\n');
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is(readFileSync(file, 'utf8'), 'A=1\n');
});

test('a folder that cannot be written is a usage error that names it', (t) => {
  const err = t.throws(
    () => {
      checkWritable('/proc/no-such-dir/app.env', '--env-file');
    },
    { instanceOf: TpError },
  );
  t.like(err, { code: 'ENV_FILE_UNWRITABLE', category: 'usage' });
  t.regex(err.message, /\/proc\/no-such-dir cannot be written/);
});
