/** Small things every client-node call site needs: a deadline, the HTTP status, the reason. */

/** Rejects with an ETIMEDOUT error when `work` has not settled within `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' }));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The HTTP status of a failed client-node call (ApiException.code), if there was a reply. */
export function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The `message` of the Status object an API server sent with a refusal, if any. */
export function statusMessage(err: unknown): string | undefined {
  let value = (err as { body?: unknown } | null)?.body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return value === '' ? undefined : (value as string);
    }
  }
  if (typeof value === 'object' && value !== null && 'message' in value) {
    const { message } = value;
    if (typeof message === 'string' && message !== '') return message;
  }
  return undefined;
}
