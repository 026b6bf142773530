import test from 'ava';
import { tp } from '../helpers/cli.js';

test('an unknown flag is a usage error with exit code 2 and no stack trace', async (t) => {
  const r = await tp(['version', '--bogus']);
  t.is(r.exitCode, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^Error: tp version has no flag --bogus\.\n {2}Fix: .*`tp version --help`/);
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

test('connect without --docker says that --docker is missing and to add it', async (t) => {
  const r = await tp(['connect']);
  t.is(r.exitCode, 2);
  t.is(r.stdout, '');
  t.is(
    r.stderr,
    'Error: tp connect needs --docker.\n  Fix: Add --docker; `tp connect --help` describes it.\n',
  );
});

test('with --json, connect without --docker carries the missing flag and the fix', async (t) => {
  const r = await tp(['connect', '--json']);
  t.is(r.exitCode, 2);
  t.deepEqual(JSON.parse(r.stdout), {
    error: {
      code: 'FLAG_MISSING',
      category: 'usage',
      message: 'tp connect needs --docker.',
      fix: 'Add --docker; `tp connect --help` describes it.',
      exitCode: 2,
    },
  });
});

test('a flag without its value is named, with the command whose help describes it', async (t) => {
  const r = await tp(['connect', '--docker', '--namespace']);
  t.is(r.exitCode, 2);
  t.regex(
    r.stderr,
    /^Error: --namespace needs a value\.\n {2}Fix: .*--namespace <value>.*`tp connect --help`/,
  );
});

test('an argument a command does not take is named, also as the word after a command', async (t) => {
  const connect = await tp(['connect', '--docker', 'extra']);
  t.is(connect.exitCode, 2);
  t.regex(
    connect.stderr,
    /^Error: tp connect does not take the argument "extra"\.\n {2}Fix: Remove it; `tp connect --help`/,
  );
  const status = await tp(['status', 'extra']);
  t.is(status.exitCode, 2);
  t.regex(status.stderr, /^Error: tp status does not take the argument "extra"\./);
});

test('a flag given twice is named', async (t) => {
  const r = await tp(['quit', '--name', 'a', '--name', 'b']);
  t.is(r.exitCode, 2);
  t.regex(
    r.stderr,
    /^Error: --name is given more than once\.\n {2}Fix: Give --name once; `tp quit --help`/,
  );
});

test('the session flag names TP_SESSION as its environment variable in the help', async (t) => {
  const commands = ['status', 'quit', 'connect'];
  const helps = await Promise.all(commands.map((c) => tp([c, '--help'])));
  helps.forEach((r, i) => {
    t.regex(r.stdout, /--name=<value>\s+\[env: TP_SESSION\]/, commands[i]);
  });
});
