import test from 'ava';
import { Errors } from '@oclif/core';
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

test("oclif's parse errors become usage errors", (t) => {
  const e = toTpError(
    new Errors.CLIError('Nonexistent flag: --bogus\nSee more help with --help', { exit: 2 }),
  );
  t.like(e, { category: 'usage', code: 'USAGE', message: 'Nonexistent flag: --bogus' });
});

test('anything unexpected is an internal error, which alone shows its stack', (t) => {
  const out = renderError(new RangeError('boom'), false);
  t.is(out.exitCode, exitCodes.internal);
  t.regex(out.text, /^Error: boom\n {2}Fix: This is a bug in tp/);
  t.regex(out.text, /RangeError: boom\n\s+at /);
});
