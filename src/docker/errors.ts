import { TpError, messageOf, systemErrorCode } from '../lib/errors.js';

/** dockerode rejects with the engine's HTTP status on API errors. */
export function statusCodeOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    if (typeof err.statusCode === 'number') return err.statusCode;
  }
  return undefined;
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH']);

/**
 * Maps a failure talking to the engine to a TpError that says what to do. Errors that are
 * not about reaching the engine are passed through with `what` as context.
 */
export function dockerError(err: unknown, endpoint: string, what: string): TpError {
  if (err instanceof TpError) return err;
  const code = systemErrorCode(err);
  if (code === 'EACCES') {
    return new TpError('unavailable', `Permission denied on the Docker socket (${endpoint}).`, {
      code: 'DOCKER_PERMISSION',
      fix: 'Add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again), or set DOCKER_HOST.',
      cause: err,
    });
  }
  if (code !== undefined && unreachableCodes.has(code)) {
    return new TpError('unavailable', `No Docker engine answers at ${endpoint} (${code}).`, {
      code: 'DOCKER_UNREACHABLE',
      fix: 'Start Docker (in the lab: `sudo lab/up`), or point DOCKER_HOST at a running engine.',
      cause: err,
    });
  }
  return new TpError('unavailable', `Docker could not ${what}: ${messageOf(err)}`, {
    code: 'DOCKER_FAILED',
    fix: 'Check the engine with `docker info`; run with TP_DEBUG=1 for the details.',
    cause: err,
  });
}
