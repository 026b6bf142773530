import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Progress } from '../cli/progress.js';
import { cacheDir } from '../lib/dirs.js';
import { TpError, messageOf } from '../lib/errors.js';

export interface StageRecipe {
  /** The cache folder's kind and key: `<cache>/<kind>/<key>`. */
  kind: string;
  key: string;
  /** A path inside the folder whose presence means the folder is complete. */
  marker: string;
  /** What the progress line says while it runs. */
  label: string;
  /** Fills the (fresh, empty) folder. */
  produce: (dir: string) => Promise<void>;
  /** Turns a failure into the error the user sees. */
  failure: (message: string) => { code: string; message: string; fix: string };
}

/**
 * Makes a cached folder once: filled in a temporary folder and renamed into place, so a
 * failed or interrupted run never leaves a half-made folder that looks complete.
 */
export async function stageCached(recipe: StageRecipe, progress: Progress): Promise<string> {
  const parent = join(cacheDir(), recipe.kind);
  const dir = join(parent, recipe.key);
  if (existsSync(join(dir, recipe.marker))) return dir;

  const step = progress.step(recipe.label);
  mkdirSync(parent, { recursive: true });
  const tmp = mkdtempSync(join(parent, `.${recipe.key}-`));
  try {
    await recipe.produce(tmp);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    step.fail();
    const f = recipe.failure(messageOf(err));
    throw new TpError('unavailable', f.message, { code: f.code, fix: f.fix, cause: err });
  }
  step.succeed();
  return dir;
}
