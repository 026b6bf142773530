import { TpError, messageOf, type TpErrorJson } from '../lib/errors.js';

/** What the renderer knows about the command line beyond the error itself. */
export interface ErrorContext {
  /** The command that raised the error, as oclif names it (`connect`, `topic:command`). */
  command?: string | undefined;
  /** Every command's id, so that a stray word after a command is not taken for a command. */
  commands?: readonly string[] | undefined;
}

/**
 * Turns anything thrown into a TpError. oclif's own parse errors are user mistakes; anything
 * else that is not already a TpError is a bug in tp and is reported as such.
 */
export function toTpError(err: unknown, ctx: ErrorContext = {}): TpError {
  if (err instanceof TpError) return err;
  const unknownCommand = /^command (\S+) not found/.exec(messageOf(err));
  if (unknownCommand !== null) return commandNotFound(unknownCommand[1] ?? '', ctx, err);
  if (isOclifParseError(err)) return parseError(messageOf(err), ctx.command, err);
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

function spaced(id: string): string {
  return `tp ${id.split(':').join(' ')}`;
}

/**
 * With a space as topic separator, oclif reads `tp status extra` as the command
 * `status:extra`; when a leading part is a command, the rest are arguments it does not take.
 */
function commandNotFound(id: string, ctx: ErrorContext, cause: unknown): TpError {
  const parts = id.split(':');
  const known = new Set(ctx.commands ?? []);
  for (let n = parts.length - 1; n > 0; n--) {
    const command = parts.slice(0, n).join(':');
    if (known.has(command)) return unexpectedArgs(parts.slice(n), spaced(command), cause);
  }
  return new TpError('usage', `There is no command "${parts.join(' ')}".`, {
    code: 'UNKNOWN_COMMAND',
    fix: 'Run `tp --help` for the list of commands.',
    cause,
  });
}

function unexpectedArgs(args: readonly string[], cmd: string, cause: unknown): TpError {
  const quoted = args.map((a) => `"${a}"`).join(', ');
  const one = args.length === 1;
  return new TpError('usage', `${cmd} does not take the argument${one ? '' : 's'} ${quoted}.`, {
    code: 'ARGUMENT_UNEXPECTED',
    fix: `Remove ${one ? 'it' : 'them'}; \`${cmd} --help\` lists the arguments and flags it takes.`,
    cause,
  });
}

/** oclif colours parts of its messages when it writes to a terminal. */
function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching the escape character is the point
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

function flagList(flags: readonly string[]): string {
  const dashed = flags.map((f) => (f.startsWith('-') ? f : `--${f}`));
  if (dashed.length <= 1) return dashed.join('');
  return `${dashed.slice(0, -1).join(', ')} and ${dashed[dashed.length - 1] ?? ''}`;
}

/**
 * oclif's parse errors, in the shapes oclif 4 words them, become a message that names the
 * flag or argument and a fix that says what to type. Whatever shape is not recognised keeps
 * every line of oclif's message: the reason must never be dropped.
 */
function parseError(raw: string, command: string | undefined, cause: unknown): TpError {
  const cmd = command === undefined ? 'tp <command>' : spaced(command);
  const help = `\`${cmd} --help\``;
  const lines = stripAnsi(raw)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== 'See more help with --help');
  const first = lines[0] ?? '';
  const usage = (message: string, code: string, fix: string): TpError =>
    new TpError('usage', message, { code, fix, cause });
  let m: RegExpExecArray | null;

  if (/^The following errors? occurred:$/.test(first)) {
    const reasons = lines.slice(1);
    const missing = reasons.flatMap((r) => /^Missing required flag (\S+)$/.exec(r)?.[1] ?? []);
    const others = reasons.filter((r) => !r.startsWith('Missing required flag '));
    const said = [
      ...(missing.length === 0 ? [] : [`${cmd} needs ${flagList(missing)}`]),
      ...others,
    ];
    const message = `${said.length > 0 ? said.join('; ') : first}.`;
    if (missing.length > 0 && others.length === 0) {
      return usage(
        message,
        'FLAG_MISSING',
        `Add ${flagList(missing)}; ${help} describes ${missing.length === 1 ? 'it' : 'them'}.`,
      );
    }
    return usage(
      message,
      'FLAG_CONSTRAINT',
      `${missing.length > 0 ? `Add ${flagList(missing)}; ` : ''}${help} says which flags go together.`,
    );
  }
  if ((m = /^Nonexistent flags?: (.+)$/.exec(first)) !== null) {
    const flags = (m[1] ?? '').split(', ');
    const one = flags.length === 1;
    return usage(
      `${cmd} has no flag${one ? '' : 's'} ${flagList(flags)}.`,
      'FLAG_UNKNOWN',
      `Remove ${one ? 'it' : 'them'} or fix the spelling; ${help} lists the flags it takes.`,
    );
  }
  if ((m = /^Unexpected arguments?: (.+)$/.exec(first)) !== null) {
    return unexpectedArgs((m[1] ?? '').split(', '), cmd, cause);
  }
  if ((m = /^Flag (--\S+) expects a value$/.exec(first)) !== null) {
    const flag = m[1] ?? '';
    return usage(
      `${flag} needs a value.`,
      'FLAG_VALUE_MISSING',
      `Put the value right after it, as ${flag} <value>; ${help} describes it.`,
    );
  }
  if ((m = /^Flag (--\S+) expects one of these values: (.+)$/.exec(first)) !== null) {
    const flag = m[1] ?? '';
    const options = m[2] ?? '';
    return usage(
      `${flag} needs one of these values: ${options}.`,
      'FLAG_VALUE_MISSING',
      `Put one right after it, as ${flag} ${options.split(', ')[0] ?? ''}; ${help} describes it.`,
    );
  }
  if ((m = /^Expected (--[^=\s]+)=(.*) to be one of: (.+)$/.exec(first)) !== null) {
    const flag = m[1] ?? '';
    const options = m[3] ?? '';
    return usage(
      `${flag} does not take "${m[2] ?? ''}"; it takes one of: ${options}.`,
      'FLAG_VALUE_INVALID',
      `Use one of them, as ${flag} ${options.split(', ')[0] ?? ''}; ${help} describes it.`,
    );
  }
  if ((m = /^Expected (.*) to be one of: (.+)$/.exec(first)) !== null) {
    return usage(
      `The argument "${m[1] ?? ''}" is not one of: ${m[2] ?? ''}.`,
      'ARGUMENT_INVALID',
      `Use one of them; ${help} describes the arguments ${cmd} takes.`,
    );
  }
  if ((m = /^Flag (--\S+) can only be specified once$/.exec(first)) !== null) {
    const flag = m[1] ?? '';
    return usage(
      `${flag} is given more than once.`,
      'FLAG_REPEATED',
      `Give ${flag} once; ${help} describes it.`,
    );
  }
  if (/^Missing \d+ required args?/.test(first)) {
    const names = lines.slice(1).flatMap((l) => /^(\S+)/.exec(l)?.[1] ?? []);
    const what = names.length > 0 ? names.map((n) => `<${n}>`).join(' ') : 'its arguments';
    return usage(
      `${cmd} needs ${what}.`,
      'ARGUMENT_MISSING',
      `Add ${names.length === 1 ? 'it' : 'them'}, as \`${cmd} ${what}\`; ${help} describes them.`,
    );
  }
  return usage(
    lines.join(' ') || first,
    'USAGE',
    `${help} lists the flags and arguments it takes.`,
  );
}

export interface RenderedError {
  stream: 'stdout' | 'stderr';
  text: string;
  exitCode: number;
}

/** The one place an error becomes output. */
export function renderError(
  err: unknown,
  json: boolean,
  debug = false,
  ctx: ErrorContext = {},
): RenderedError {
  const e = toTpError(err, ctx);
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
