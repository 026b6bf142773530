import test from 'ava';
import { Args, Errors, Flags, Parser } from '@oclif/core';
import { renderError, toTpError } from '../../src/cli/render-error.js';
import { TpError, exitCodes } from '../../src/lib/errors.js';

const userMistake = new TpError('usage', 'There is no context named "nope".', {
  code: 'KUBECONTEXT_UNKNOWN',
  fix: 'Use one of: tp-lab.',
});

test('a user mistake renders as its message and its fix, without a stack trace', (t) => {
  const out = renderError(userMistake, false);
  t.is(out.stream, 'stderr');
  t.is(out.text, 'Error: There is no context named "nope".\n  Fix: Use one of: tp-lab.');
  t.is(out.exitCode, 2);
});

test('with --json the error is a JSON object on stdout carrying code, category and exit code', (t) => {
  const out = renderError(userMistake, true);
  t.is(out.stream, 'stdout');
  t.deepEqual(JSON.parse(out.text), {
    error: {
      code: 'KUBECONTEXT_UNKNOWN',
      category: 'usage',
      message: 'There is no context named "nope".',
      fix: 'Use one of: tp-lab.',
      exitCode: 2,
    },
  });
});

test('each category has its own exit code', (t) => {
  const codes = Object.values(exitCodes);
  t.is(new Set(codes).size, codes.length);
  t.is(new TpError('unavailable', 'x', { code: 'X', fix: 'y' }).exitCode, exitCodes.unavailable);
});

/** The error oclif's own parser raises for `argv`, so the shapes are oclif's real ones. */
async function parseError(argv: string[], input: Parameters<typeof Parser.parse>[1]) {
  const err = await Parser.parse(argv, { strict: true, ...input }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error(`oclif accepted ${argv.join(' ')}`);
  return toTpError(err, { command: 'connect' });
}

test('a missing required flag names the flag, and the fix says to add it', async (t) => {
  const e = await parseError([], { flags: { docker: Flags.boolean({ required: true }) } });
  t.like(e, { category: 'usage', code: 'FLAG_MISSING', message: 'tp connect needs --docker.' });
  t.is(e.fix, 'Add --docker; `tp connect --help` describes it.');
});

test('several missing required flags are all named', async (t) => {
  const e = await parseError([], {
    flags: { a: Flags.string({ required: true }), b: Flags.string({ required: true }) },
  });
  t.is(e.message, 'tp connect needs --a and --b.');
  t.regex(e.fix, /^Add --a and --b; /);
});

test('a nonexistent flag is named, with the command whose flags it is not one of', async (t) => {
  const e = await parseError(['--bogus'], { flags: {} });
  t.like(e, { code: 'FLAG_UNKNOWN', message: 'tp connect has no flag --bogus.' });
  t.regex(e.fix, /`tp connect --help` lists the flags it takes/);
});

test('an unexpected argument is named', async (t) => {
  const e = await parseError(['extra'], { flags: {} });
  t.like(e, {
    code: 'ARGUMENT_UNEXPECTED',
    message: 'tp connect does not take the argument "extra".',
  });
  t.regex(e.fix, /^Remove it; `tp connect --help`/);
});

test('a flag missing its value is named, and the fix shows the value after it', async (t) => {
  const e = await parseError(['--namespace'], { flags: { namespace: Flags.string() } });
  t.like(e, { code: 'FLAG_VALUE_MISSING', message: '--namespace needs a value.' });
  t.regex(e.fix, /--namespace <value>/);
});

test('a flag missing one of its options lists the options', async (t) => {
  const e = await parseError(['--mode'], {
    flags: { mode: Flags.string({ options: ['a', 'b'] }) },
  });
  t.like(e, { code: 'FLAG_VALUE_MISSING', message: '--mode needs one of these values: a, b.' });
  t.regex(e.fix, /--mode a/);
});

test('an invalid option value names the flag, the value and the options', async (t) => {
  const e = await parseError(['--mode=c'], {
    flags: { mode: Flags.string({ options: ['a', 'b'] }) },
  });
  t.like(e, {
    code: 'FLAG_VALUE_INVALID',
    message: '--mode does not take "c"; it takes one of: a, b.',
  });
  t.regex(e.fix, /--mode a/);
});

test('an invalid argument value names the value and the options', async (t) => {
  const e = await parseError(['c'], { args: { kind: Args.string({ options: ['a', 'b'] }) } });
  t.like(e, { code: 'ARGUMENT_INVALID', message: 'The argument "c" is not one of: a, b.' });
});

test('a flag given twice is named', async (t) => {
  const e = await parseError(['--name', 'a', '--name', 'b'], { flags: { name: Flags.string() } });
  t.like(e, { code: 'FLAG_REPEATED', message: '--name is given more than once.' });
});

test('a missing required argument is named', async (t) => {
  const e = await parseError([], {
    args: { target: Args.string({ required: true, description: 'what to reach' }) },
  });
  t.like(e, { code: 'ARGUMENT_MISSING', message: 'tp connect needs <target>.' });
});

test("a parse error in a shape tp does not know keeps oclif's whole reason", (t) => {
  const e = toTpError(
    new Errors.CLIError(
      'The following error occurred:\n  --a=1 cannot also be provided when using --b\nSee more help with --help',
      { exit: 2 },
    ),
    { command: 'status' },
  );
  t.like(e, { category: 'usage', message: '--a=1 cannot also be provided when using --b.' });
  t.regex(e.fix, /`tp status --help`/);
});

test("oclif's terminal colours do not reach the message", (t) => {
  const e = toTpError(
    new Errors.CLIError(
      'The following error occurred:\n  \x1b[2mMissing required flag docker\x1b[22m\nSee more help with --help',
      { exit: 2 },
    ),
    { command: 'connect' },
  );
  t.is(e.message, 'tp connect needs --docker.');
});

test('a word after a command is an argument that command does not take, not an unknown command', (t) => {
  const e = toTpError(new Errors.CLIError('command status:extra not found', { exit: 2 }), {
    commands: ['status', 'connect'],
  });
  t.like(e, {
    code: 'ARGUMENT_UNEXPECTED',
    message: 'tp status does not take the argument "extra".',
  });
  const unknown = toTpError(new Errors.CLIError('command frob:nicate not found', { exit: 2 }), {
    commands: ['status'],
  });
  t.like(unknown, { code: 'UNKNOWN_COMMAND', message: 'There is no command "frob nicate".' });
});

test('anything unexpected is an internal error, which alone shows its stack', (t) => {
  const out = renderError(new RangeError('boom'), false);
  t.is(out.exitCode, exitCodes.internal);
  t.regex(out.text, /^Error: boom\n {2}Fix: This is a bug in tp/);
  t.regex(out.text, /RangeError: boom\n\s+at /);
});
