/**
 * The control API between the CLI and the daemon. Docker publishes it on the host's loopback
 * only; containers that join the daemon's network namespace can reach the port too, so every
 * request must carry the session's secret. Routes, bodies and responses are typed in
 * src/contract/control.ts.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import {
  ControlStream,
  ControlUpload,
  MAX_CONTROL_BODY,
  MAX_CONTROL_UPLOAD,
  STREAM_META_HEADER,
  bodyParsers,
  uploadParsers,
  type BodyParser,
  type ControlRequest,
  type ControlResponse,
  type ControlRoute,
  type UploadRoute,
} from '../contract/control.js';

export type ControlHandlers = {
  [R in ControlRoute]: (
    request: ControlRequest<R>,
  ) => Promise<ControlResponse<R>> | ControlResponse<R>;
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function isRoute(key: string): key is ControlRoute {
  return Object.hasOwn(bodyParsers, key) || isUpload(key);
}

function isUpload(key: string): key is UploadRoute {
  return Object.hasOwn(uploadParsers, key);
}

function parsed(parse: BodyParser<unknown>, body: unknown): unknown {
  try {
    return parse(body);
  } catch (err) {
    throw new HttpError(400, err instanceof Error ? err.message : String(err));
  }
}

/** An upload's description, from its header, and its body, cut off past the limit. */
function uploadOf(key: UploadRoute, req: IncomingMessage): ControlUpload<unknown> {
  const header = req.headers[STREAM_META_HEADER];
  let meta: unknown;
  try {
    meta = typeof header === 'string' ? JSON.parse(decodeURIComponent(header)) : undefined;
  } catch {
    throw new HttpError(400, `the ${STREAM_META_HEADER} header is not URI-encoded JSON`);
  }
  if (meta === undefined)
    throw new HttpError(400, `an upload needs a ${STREAM_META_HEADER} header`);
  let size = 0;
  const limited = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > MAX_CONTROL_UPLOAD) done(new Error(`upload over ${MAX_CONTROL_UPLOAD} bytes`));
      else done(null, chunk);
    },
  });
  req.once('error', (err) => limited.destroy(err));
  req.pipe(limited);
  return new ControlUpload(limited, parsed(uploadParsers[key], meta));
}

/** The request's JSON body, undefined when it has none. */
async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_CONTROL_BODY)
      throw new HttpError(413, `request body over ${MAX_CONTROL_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}

async function dispatch(
  handlers: ControlHandlers,
  key: ControlRoute,
  req: IncomingMessage,
): Promise<unknown> {
  // Each route's parser makes that route's request; TypeScript cannot follow the pairing.
  const request = isUpload(key)
    ? uploadOf(key, req)
    : parsed(bodyParsers[key], await readBody(req));
  const handler = handlers[key] as (r: unknown) => unknown;
  return handler(request);
}

/**
 * A stream's body follows its headers as it comes. A failure after the headers can only cut
 * the body short, which the client sees as an aborted response; the source is closed either way.
 */
function sendStream(res: ServerResponse, answer: ControlStream<unknown>): void {
  res.writeHead(200, {
    'content-type': answer.contentType,
    [STREAM_META_HEADER]: encodeURIComponent(JSON.stringify(answer.meta)),
  });
  pipeline(answer.body, res).catch(() => {
    answer.body.destroy();
    res.destroy();
  });
}

export class ControlServer implements AsyncDisposable {
  private stopped: Promise<void> | undefined;

  private constructor(private readonly server: Server) {}

  static async listen(
    port: number,
    secret: string,
    handlers: ControlHandlers,
  ): Promise<ControlServer> {
    const expected = Buffer.from(`Bearer ${secret}`);
    const server = createServer((req, res) => {
      const given = Buffer.from(req.headers.authorization ?? '');
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        req.resume();
        send(401, { error: 'this request does not carry the session secret' });
        return;
      }
      const key = `${req.method ?? 'GET'} ${req.url ?? '/'}`;
      if (!isRoute(key)) {
        req.resume();
        send(404, { error: `no route ${key}` });
        return;
      }
      dispatch(handlers, key, req).then(
        (body) => {
          if (body instanceof ControlStream) sendStream(res, body);
          else send(200, body);
        },
        (err: unknown) => {
          const status = err instanceof HttpError ? err.status : 500;
          send(status, { error: err instanceof Error ? err.message : String(err) });
        },
      );
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '0.0.0.0', () => {
        resolve();
      });
    });
    return new ControlServer(server);
  }

  /** The port it listens on (the one asked for, or the kernel's pick for 0). */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  stop(): Promise<void> {
    this.stopped ??= new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => {
        resolve();
      });
    });
    return this.stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
