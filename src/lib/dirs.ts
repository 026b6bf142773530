import { homedir } from 'node:os';
import { join } from 'node:path';

/** tp's cache folder: $TP_CACHE_DIR, else $XDG_CACHE_HOME/tp, else ~/.cache/tp. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TP_CACHE_DIR !== undefined && env.TP_CACHE_DIR !== '') return env.TP_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(env.HOME ?? homedir(), '.cache'), 'tp');
}
