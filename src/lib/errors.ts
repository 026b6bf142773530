/**
 * The one error type tp raises. Everything a user can see goes through `renderError`, so a
 * message, its fix and its exit code are decided where the failure is understood, not where
 * it is printed.
 */
export type ErrorCategory =
  | 'usage' // the command line is wrong: fix the flags or arguments
  | 'config' // a file or setting tp reads is missing or wrong
  | 'unavailable' // something tp needs (Docker, the cluster, an image) cannot be reached
  | 'state' // the request conflicts with what exists (not connected, already engaged)
  | 'failed' // tp did its job and the answer is "no" (a doctor check failed)
  | 'internal'; // a bug in tp: the only category that prints a stack trace

export const exitCodes: Readonly<Record<ErrorCategory, number>> = {
  failed: 1,
  usage: 2,
  config: 3,
  unavailable: 4,
  state: 5,
  internal: 70,
};

export interface TpErrorOptions {
  /** What the user should do next: a command, a flag, a file to edit. */
  fix: string;
  /** A stable identifier scripts can match on, e.g. `DOCKER_UNREACHABLE`. */
  code: string;
  cause?: unknown;
}

export class TpError extends Error {
  override readonly name = 'TpError';
  readonly category: ErrorCategory;
  readonly code: string;
  readonly fix: string;

  constructor(category: ErrorCategory, message: string, options: TpErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.category = category;
    this.code = options.code;
    this.fix = options.fix;
  }

  get exitCode(): number {
    return exitCodes[this.category];
  }

  toJSON(): TpErrorJson {
    return {
      code: this.code,
      category: this.category,
      message: this.message,
      fix: this.fix,
      exitCode: this.exitCode,
    };
  }
}

export interface TpErrorJson {
  code: string;
  category: ErrorCategory;
  message: string;
  fix: string;
  exitCode: number;
}

/** Node's system errors carry a string `code` such as ENOENT or ECONNREFUSED. */
export function systemErrorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    if (typeof err.code === 'string') return err.code;
  }
  return undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
