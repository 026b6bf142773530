/**
 * The engaged container's environment, written where the user asked: `--env-file` in Docker's
 * env-file syntax, `--env-json` as JSON, both mode 0600 (they hold the pod's secrets). Docker's
 * syntax has no quoting, so a value with a line break cannot be written there: it is left out
 * and named, and the JSON file has it.
 */
import { accessSync, constants, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TpError } from '../lib/errors.js';

export function dockerEnvFile(env: Readonly<Record<string, string>>): {
  text: string;
  skipped: string[];
} {
  const names = Object.keys(env).sort();
  const skipped = names.filter((n) => /[\r\n]/.test(env[n] ?? ''));
  const lines = names.filter((n) => !skipped.includes(n)).map((n) => `${n}=${env[n] ?? ''}`);
  return { text: lines.length === 0 ? '' : `${lines.join('\n')}\n`, skipped };
}

export function jsonEnvFile(env: Readonly<Record<string, string>>): string {
  const sorted = Object.fromEntries(
    Object.keys(env)
      .sort()
      .map((n) => [n, env[n] ?? '']),
  );
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/** Checked before anything is changed: a file that cannot be written fails the command early. */
export function checkWritable(path: string, flag: string): void {
  const dir = dirname(resolve(path));
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new TpError('usage', `${flag} ${path}: the folder ${dir} cannot be written.`, {
      code: 'ENV_FILE_UNWRITABLE',
      fix: `Write it somewhere you can write, or create ${dir} first.`,
      cause: err,
    });
  }
}

export function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
}
