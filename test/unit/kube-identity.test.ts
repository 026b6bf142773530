import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeIdentity, loadKubeConfig } from '../../src/k8s/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-identity-'));
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

function identityOf(
  user: string,
  creds: Record<string, unknown>,
  server = 'https://k.invalid:6443',
) {
  const file = join(dir, `${user}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'lab',
      clusters: [{ name: 'c', cluster: { server } }],
      users: [{ name: user, user: creds }],
      contexts: [{ name: 'lab', context: { cluster: 'c', user } }],
    }),
  );
  const { kc, target } = loadKubeConfig({ kubeconfig: file }, {});
  return kubeIdentity(kc, target);
}

test('the kubeconfig identity names the user entry and hashes, never shows, its credentials', (t) => {
  const id = identityOf('alice', { token: 'super-secret-token' });
  t.is(id.user, 'alice');
  t.regex(id.hash, /^[0-9a-f]{16}$/);
  t.notRegex(JSON.stringify(id), /super-secret-token/);
});

test('the same credentials under another user name, or another token, are another identity', (t) => {
  const alice = identityOf('alice', { token: 'a' });
  t.is(identityOf('alice', { token: 'a' }).hash, alice.hash);
  t.not(identityOf('bob', { token: 'a' }).hash, alice.hash);
  t.not(identityOf('alice', { token: 'b' }).hash, alice.hash);
  t.not(identityOf('alice', { token: 'a' }, 'https://other.invalid:6443').hash, alice.hash);
});

test('a client certificate in a file and the same one embedded are the same identity', (t) => {
  const certFile = join(dir, 'client.crt');
  writeFileSync(certFile, CERT);
  const fromFile = identityOf('u', { 'client-certificate': certFile, 'client-key-data': 'a2V5' });
  const embedded = identityOf('u', {
    'client-certificate-data': Buffer.from(CERT).toString('base64'),
    'client-key-data': 'b3RoZXIta2V5',
  });
  t.is(fromFile.hash, embedded.hash);
});
