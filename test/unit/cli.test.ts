import test from 'ava';
import { tp } from '../helpers/cli.js';

test('an unknown flag is a usage error with exit code 2 and no stack trace', async (t) => {
  const r = await tp(['version', '--bogus']);
  t.is(r.exitCode, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^Error: Nonexistent flag: --bogus\n {2}Fix: /);
  t.notRegex(r.stderr, /\n\s+at /);
});

test('with --json a usage error is JSON on stdout', async (t) => {
  const r = await tp(['doctor', '--bogus', '--json']);
  t.is(r.exitCode, 2);
  t.like(JSON.parse(r.stdout), { error: { category: 'usage', exitCode: 2 } });
});

test('an unknown command points at the list of commands', async (t) => {
  const r = await tp(['frobnicate']);
  t.is(r.exitCode, 2);
  t.regex(r.stderr, /frobnicate/);
  t.regex(r.stderr, /tp --help/);
});
