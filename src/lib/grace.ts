/**
 * How long tp-manager waits for a session that sends no heartbeat before it restores what the
 * session engages, and how often a daemon must send one. Shared by the CLI (which writes the
 * grace into each engagement), the daemon (which sends the heartbeats) and tp-manager.
 */

/** The environment variable that sets the grace: seconds (`300`) or a duration (`5m`, `30s`). */
export const GRACE_ENV = 'TP_ENGAGEMENT_GRACE';
export const DEFAULT_GRACE_SECONDS = 300;
/** Below this a heartbeat would be due more than once a second. */
export const MIN_GRACE_SECONDS = 3;
/** A week: longer is a typo, and a shared cluster would keep a dead session's workload as long. */
export const MAX_GRACE_SECONDS = 7 * 24 * 3600;
/** The longest a daemon waits between heartbeats, whatever its grace. */
export const MAX_HEARTBEAT_INTERVAL_MS = 30_000;

const units: Readonly<Record<string, number>> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/**
 * Seconds from a plain number of seconds or a Go duration (`1h30m`, `90s`, `1.5m`); undefined
 * when the text is neither.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  if (!/^((\d+(\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d*\.?\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * (units[m[2] ?? ''] ?? Number.NaN);
  }
  return Number.isFinite(total) ? total : undefined;
}

/**
 * The grace in whole seconds (rounded up), or why the text is not one. A grace shorter than
 * MIN_GRACE_SECONDS or longer than MAX_GRACE_SECONDS is refused.
 */
export function parseGrace(text: string): { seconds: number } | { error: string } {
  const seconds = parseDurationSeconds(text);
  if (seconds === undefined) {
    return { error: `"${text}" is neither a number of seconds nor a duration such as 5m or 30s` };
  }
  if (seconds < MIN_GRACE_SECONDS) return { error: `${text} is under ${MIN_GRACE_SECONDS} s` };
  if (seconds > MAX_GRACE_SECONDS) return { error: `${text} is over a week` };
  return { seconds: Math.ceil(seconds) };
}

/**
 * How often a daemon whose session has this grace sends a heartbeat: a third of the grace, so
 * two heartbeats can be lost before tp-manager restores anything, and at most every 30 s.
 */
export function heartbeatIntervalMs(graceSeconds: number): number {
  return Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(1000, (graceSeconds * 1000) / 3));
}
