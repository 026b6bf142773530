/**
 * The daemon's heartbeats to tp-manager, for the whole session: a session that stops sending
 * them (its container killed, the machine asleep or gone) has what it engages restored by
 * tp-manager once its grace has passed (agent/reaper.ts).
 */
import { DEFAULT_GRACE_SECONDS, GRACE_ENV, heartbeatIntervalMs, parseGrace } from '../lib/grace.js';
import { messageOf } from '../lib/errors.js';

export interface Heartbeats {
  stop(): void;
}

/**
 * The grace `tp connect` gave the daemon in its environment (in seconds, already checked by
 * the CLI); the default when there is none.
 */
export function graceFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[GRACE_ENV];
  if (text === undefined || text.trim() === '') return DEFAULT_GRACE_SECONDS;
  const grace = parseGrace(text);
  return 'seconds' in grace ? grace.seconds : DEFAULT_GRACE_SECONDS;
}

/**
 * Sends one heartbeat now and then one every `heartbeatIntervalMs(grace)`, never two at once.
 * A failure is logged when it starts and when it ends, not at every beat.
 */
export function startHeartbeats(opts: {
  send: () => Promise<void>;
  grace: number;
  log: (o: object) => void;
}): Heartbeats {
  const intervalMs = heartbeatIntervalMs(opts.grace);
  let inFlight = false;
  let failing: string | undefined;
  const beat = (): void => {
    if (inFlight) return;
    inFlight = true;
    opts
      .send()
      .then(
        () => {
          if (failing !== undefined) opts.log({ msg: 'heartbeats reach tp-manager again' });
          failing = undefined;
        },
        (err: unknown) => {
          const error = messageOf(err);
          if (failing === undefined) opts.log({ msg: 'heartbeat failed', error });
          failing = error;
        },
      )
      .finally(() => {
        inFlight = false;
      });
  };
  opts.log({ msg: 'heartbeats', grace: opts.grace, intervalMs });
  beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
    },
  };
}
