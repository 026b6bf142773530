// A TCP delay line for benchmarks: this kernel has no netem, so round-trip time is added in
// user space. Each chunk read from one side is written to the other `delayMs` later, in
// order, while reading goes on: a line that holds up to `maxBufferedBytes` per direction,
// not a stop-and-wait, so throughput is limited only by maxBufferedBytes / delayMs.
// It is a split connection (each side's TCP runs to the proxy), so it adds delay and nothing
// else: no loss, and no window limit from the far side's round trip.
//   npx tsx bench/delay-proxy.ts --target 127.0.0.1:6443 --delay-ms 10 [--listen 127.0.0.1,198.19.0.1] [--port 0]
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface DelayProxyOptions {
  target: { host: string; port: number };
  /** Added to each direction, so a round trip grows by twice this. */
  delayMs: number;
  /** Every address listens on the same port (default 127.0.0.1 only). */
  hosts?: string[];
  /** 0 (the default) picks a port that is free on every host. */
  port?: number;
  /** Bytes held per direction of one connection before the proxy stops reading. */
  maxBufferedBytes?: number;
}

export interface DelayProxyStats {
  connections: number;
  open: number;
  bytesUp: number;
  bytesDown: number;
}

export interface DelayProxy extends AsyncDisposable {
  port: number;
  hosts: string[];
  stats: DelayProxyStats;
  close(): Promise<void>;
}

/** One direction of one connection: chunks leave in order, each `delayMs` after it arrived. */
class DelayLine {
  private readonly queue: { due: number; chunk: Buffer | null }[] = [];
  private held = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly delayMs: number,
    private readonly maxBytes: number,
    onBytes: (n: number) => void,
  ) {
    src.on('data', (chunk: Buffer) => {
      onBytes(chunk.length);
      this.queue.push({ due: performance.now() + delayMs, chunk });
      this.held += chunk.length;
      if (this.pending() > maxBytes) src.pause();
      this.schedule();
    });
    src.once('end', () => {
      this.queue.push({ due: performance.now() + delayMs, chunk: null });
      this.schedule();
    });
    dst.on('drain', () => {
      this.maybeResume();
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private pending(): number {
    return this.held + this.dst.writableLength;
  }

  private maybeResume(): void {
    if (this.src.isPaused() && this.pending() <= this.maxBytes / 2) this.src.resume();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (this.timer !== undefined || head === undefined) return;
    const wait = Math.max(0, Math.ceil(head.due - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const now = performance.now();
    let head = this.queue[0];
    while (head !== undefined && head.due <= now) {
      this.queue.shift();
      if (head.chunk === null) {
        this.dst.end();
      } else if (!this.dst.destroyed) {
        this.held -= head.chunk.length;
        this.dst.write(head.chunk);
      }
      head = this.queue[0];
    }
    this.maybeResume();
    this.schedule();
  }
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(err);
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => {
      resolve();
    });
  });
}

export async function startDelayProxy(opts: DelayProxyOptions): Promise<DelayProxy> {
  const hosts = opts.hosts ?? ['127.0.0.1'];
  const maxBytes = opts.maxBufferedBytes ?? 32 * 1024 * 1024;
  const stats: DelayProxyStats = { connections: 0, open: 0, bytesUp: 0, bytesDown: 0 };
  const sockets = new Set<Socket>();

  const onClient = (client: Socket): void => {
    stats.connections += 1;
    stats.open += 1;
    const upstream = createConnection({
      host: opts.target.host,
      port: opts.target.port,
      allowHalfOpen: true,
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
    }
    const lines = [
      new DelayLine(client, upstream, opts.delayMs, maxBytes, (n) => (stats.bytesUp += n)),
      new DelayLine(upstream, client, opts.delayMs, maxBytes, (n) => (stats.bytesDown += n)),
    ];
    let closed = 0;
    const onClose = (s: Socket): void => {
      sockets.delete(s);
      closed += 1;
      if (closed === 2) {
        stats.open -= 1;
        for (const l of lines) l.stop();
      }
    };
    // A reset on either side resets the other at once; a clean FIN travels down the line.
    const abort = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', abort);
    upstream.on('error', abort);
    client.once('close', () => {
      onClose(client);
    });
    upstream.once('close', () => {
      onClose(upstream);
    });
  };

  const servers: Server[] = [];
  let port = opts.port ?? 0;
  // The same port on every host: pick it on the first, then take it on the others; try again
  // when another process already holds it on one of them.
  for (let attempt = 0; ; attempt++) {
    servers.length = 0;
    try {
      for (const host of hosts) {
        const server = createServer({ allowHalfOpen: true, noDelay: true }, onClient);
        servers.push(server);
        port = await listen(server, host, port);
      }
      break;
    } catch (err) {
      await Promise.all(servers.map(closeServer));
      const inUse = (err as { code?: unknown }).code === 'EADDRINUSE';
      if (!inUse || (opts.port ?? 0) !== 0 || attempt >= 20) throw err;
      port = 0;
    }
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const closed = [...sockets].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.once('close', () => {
              resolve();
            });
            s.destroy();
          }),
      );
      await Promise.all([...servers.map(closeServer), ...closed]);
    })());
  return { port, hosts, stats, close, [Symbol.asyncDispose]: close };
}

function parseTarget(text: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text);
  if (m?.[1] === undefined || m[2] === undefined) throw new Error(`--target ${text}: HOST:PORT`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: '127.0.0.1:6443' },
      'delay-ms': { type: 'string', default: '10' },
      listen: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
    },
  });
  const proxy = await startDelayProxy({
    target: parseTarget(values.target),
    delayMs: Number(values['delay-ms']),
    hosts: values.listen.split(',').map((h) => h.trim()),
    port: Number(values.port),
  });
  console.log(
    `delay-proxy: ${proxy.hosts.map((h) => `${h}:${proxy.port}`).join(', ')} -> ${values.target}, +${values['delay-ms']} ms each way`,
  );
  const stop = (): void => {
    void proxy.close().then(() => {
      console.log(
        `delay-proxy: ${proxy.stats.connections} connections, ${proxy.stats.bytesUp} bytes up, ${proxy.stats.bytesDown} bytes down`,
      );
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
