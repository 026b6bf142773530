import { TpError, messageOf, type TpErrorJson } from '../lib/errors.js';

/**
 * Turns anything thrown into a TpError. oclif's own parse errors are user mistakes; anything
 * else that is not already a TpError is a bug in tp and is reported as such.
 */
export function toTpError(err: unknown): TpError {
  if (err instanceof TpError) return err;
  const unknownCommand = /^command (\S+) not found/.exec(messageOf(err));
  if (unknownCommand !== null) {
    return new TpError('usage', `There is no command "${unknownCommand[1] ?? ''}".`, {
      code: 'UNKNOWN_COMMAND',
      fix: 'Run `tp --help` for the list of commands.',
      cause: err,
    });
  }
  if (isOclifParseError(err)) {
    return new TpError('usage', firstLine(messageOf(err)), {
      code: 'USAGE',
      fix: 'See `tp <command> --help` for the flags and arguments it takes.',
      cause: err,
    });
  }
  return new TpError('internal', messageOf(err), {
    code: 'INTERNAL',
    fix: 'This is a bug in tp. Run again with TP_DEBUG=1 and report the output.',
    cause: err,
  });
}

function isOclifParseError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // oclif marks parser and CLI usage errors with an `oclif` property carrying an exit code.
  const oclif = (err as { oclif?: { exit?: unknown } }).oclif;
  return typeof oclif?.exit === 'number';
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? text;
}

export interface RenderedError {
  stream: 'stdout' | 'stderr';
  text: string;
  exitCode: number;
}

/** The one place an error becomes output. */
export function renderError(err: unknown, json: boolean, debug = false): RenderedError {
  const e = toTpError(err);
  if (json) {
    const body: { error: TpErrorJson } = { error: e.toJSON() };
    return { stream: 'stdout', text: JSON.stringify(body, null, 2), exitCode: e.exitCode };
  }
  const lines = [`Error: ${e.message}`, `  Fix: ${e.fix}`];
  if (e.category === 'internal' || debug) {
    const stack = e.cause instanceof Error ? e.cause.stack : e.stack;
    if (stack !== undefined) lines.push('', stack);
  }
  return { stream: 'stderr', text: lines.join('\n'), exitCode: e.exitCode };
}
