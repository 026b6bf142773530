import { Command, Errors } from '@oclif/core';
import { renderError } from './render-error.js';
import { debugEnabled } from '../lib/log.js';
import { createProgress, type Progress } from './progress.js';

/**
 * Every tp command extends this: `--json` on all of them, and errors rendered once, here,
 * instead of by oclif (which would print stack traces for user mistakes).
 */
export abstract class TpCommand extends Command {
  static override enableJsonFlag = true;

  /** Progress goes to stderr, so stdout stays parseable with --json. */
  protected progress(): Progress {
    return createProgress(process.stderr);
  }

  protected override catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof Errors.ExitError) {
      process.exitCode = err.oclif.exit;
      return Promise.resolve();
    }
    const out = renderError(err, this.jsonEnabled(), debugEnabled());
    (out.stream === 'stdout' ? process.stdout : process.stderr).write(`${out.text}\n`);
    process.exitCode = out.exitCode;
    return Promise.resolve();
  }
}
