import test from 'ava';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverVersion } from '../../src/k8s/cluster.js';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import { TpError } from '../../src/lib/errors.js';

/** A loopback port that nothing listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

test('an API server that does not answer is reported as unreachable with the context and server', async (t) => {
  const port = await closedPort();
  const dir = mkdtempSync(join(tmpdir(), 'tp-kc-'));
  const p = join(dir, 'config');
  writeFileSync(
    p,
    `apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:${port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: lab\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: t}\n`,
  );
  const { kc, target } = loadKubeConfig({ kubeconfig: p }, {});
  const err = await t.throwsAsync(serverVersion(kc, target, 3000), { instanceOf: TpError });
  t.like(err, { category: 'unavailable', code: 'CLUSTER_UNREACHABLE' });
  t.regex(err.message, new RegExp(`context "lab" \\(https://127\\.0\\.0\\.1:${port}\\)`));
});
