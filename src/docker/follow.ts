export interface EngineMessage {
  stream?: unknown;
  status?: unknown;
  id?: unknown;
  error?: unknown;
  errorDetail?: { message?: unknown };
}

/** Reads the engine's newline-delimited JSON progress; a message with `error` fails it. */
export function followJson(
  stream: NodeJS.ReadableStream,
  onMessage: (msg: EngineMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let failed: Error | undefined;
    const handle = (line: string): void => {
      if (line.trim() === '') return;
      let msg: EngineMessage;
      try {
        msg = JSON.parse(line) as EngineMessage;
      } catch {
        onMessage({ stream: line });
        return;
      }
      if (msg.error !== undefined && failed === undefined) {
        const detail = msg.errorDetail?.message ?? msg.error;
        failed = new Error(typeof detail === 'string' ? detail : JSON.stringify(detail));
      }
      onMessage(msg);
    };
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        handle(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    stream.on('error', reject);
    stream.on('end', () => {
      handle(buf);
      if (failed === undefined) resolve();
      else reject(failed);
    });
  });
}
