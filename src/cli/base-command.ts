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

  /** Where a command that hands its output on (the engagements) writes. */
  protected output(): {
    log: (text: string) => void;
    logToStderr: (text: string) => void;
    progress: Progress;
  } {
    return {
      log: (text) => {
        this.log(text);
      },
      logToStderr: (text) => {
        this.logToStderr(text);
      },
      progress: this.progress(),
    };
  }

  protected override catch(err: Error & { exitCode?: number }): Promise<unknown> {
    // Every tp command parses first, so an error here came from parsing or after it; without
    // this, oclif warns under NODE_ENV=development or test that a command failing to parse
    // "did not parse its arguments", after the usage error.
    this.parsed = true;
    if (err instanceof Errors.ExitError) {
      process.exitCode = err.oclif.exit;
      return Promise.resolve();
    }
    const out = renderError(err, this.jsonEnabled(), debugEnabled(), { command: this.id });
    (out.stream === 'stdout' ? process.stdout : process.stderr).write(`${out.text}\n`);
    process.exitCode = out.exitCode;
    return Promise.resolve();
  }
}
