/**
 * Raw HTTPS and WebSocket access to the API server, without client-node, with the credentials
 * of a KubeConfig (the daemon) or of a pod's ServiceAccount (tp-manager, in-cluster.ts). The
 * daemon reaches a server that the kubeconfig names as 127.0.0.1 or localhost through another
 * host name (host.docker.internal, a control-plane container); `verifyHostname` keeps
 * certificate verification bound to the name the certificate was issued for.
 */
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';

export interface KubeTransport {
  server: URL;
  tls: {
    ca?: string | Buffer | (string | Buffer)[];
    cert?: string | Buffer | (string | Buffer)[];
    key?: string | Buffer | (string | Buffer)[];
    rejectUnauthorized?: boolean;
    servername?: string;
    checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  };
  headers: Record<string, string>;
}

export class ApiStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    path: string,
  ) {
    super(`HTTP ${status} from ${path}: ${body.slice(0, 300)}`);
  }
}

/** GET a JSON document; non-2xx answers reject with ApiStatusError. */
export function getJson<T>(t: KubeTransport, path: string, timeoutMs = 10_000): Promise<T> {
  return requestJson<T>(t, { path, timeoutMs });
}

export interface ApiRequest {
  path: string;
  method?: 'GET' | 'PATCH';
  /** `application/json` unless said otherwise (e.g. a metadata-only list). */
  accept?: string;
  body?: { contentType: string; text: string };
  timeoutMs?: number;
}

/** One request whose answer is JSON; non-2xx answers reject with ApiStatusError. */
export function requestJson<T>(t: KubeTransport, opts: ApiRequest): Promise<T> {
  const { path, method = 'GET', body, timeoutMs = 10_000 } = opts;
  return new Promise((resolve, reject) => {
    const url = new URL(path, t.server);
    const headers: Record<string, string> = {
      ...t.headers,
      Accept: opts.accept ?? 'application/json',
    };
    if (body !== undefined) {
      headers['Content-Type'] = body.contentType;
      headers['Content-Length'] = String(Buffer.byteLength(body.text));
    }
    const req = request(
      url,
      {
        ...t.tls,
        // No pooled socket: the pool's key ignores checkServerIdentity, so a socket verified
        // for one name could be reused for a request that must verify another.
        agent: false,
        method,
        headers,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new ApiStatusError(status, text, path));
            return;
          }
          try {
            resolve(JSON.parse(text) as T);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
    );
    req.on('error', reject);
    req.end(body?.text);
  });
}
