/**
 * What the pod's probes reach. The agent's own port is on loopback only, where the kubelet's
 * HTTP and TCP probes (sent to the pod's IP) cannot reach it, so a port of its own answers them.
 */
import { createServer, get, type Server } from 'node:http';

export async function listenHealth(port: number, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    const read = req.method === 'GET' || req.method === 'HEAD';
    res.writeHead(read ? 200 : 405, { 'content-type': 'text/plain' });
    res.end(read ? 'ok' : '');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** For an exec probe: whether the health port answers 200 within `timeoutMs`. */
export function probeHealth(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host, port, path: '/', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', () => {
      resolve(false);
    });
  });
}
