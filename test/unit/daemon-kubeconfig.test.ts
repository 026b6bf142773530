import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonKubeconfig } from '../../src/k8s/daemon-kubeconfig.js';
import { daemonAccess } from '../../src/k8s/daemon-transport.js';
import { getJson } from '../../src/k8s/transport.js';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import { TpError } from '../../src/lib/errors.js';

// Dummy PEM text is enough for flattening, which only copies bytes.
const CA = '-----BEGIN CERTIFICATE-----\nZHVtbXkgY2E=\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nZHVtbXkgY2VydA==\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nZHVtbXkga2V5\n-----END PRIVATE KEY-----\n';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface KubeconfigJson {
  'current-context': string;
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: Record<string, unknown> }[];
  extensions: { name: string; extension: Record<string, unknown> }[];
}

/** A directory holding a kubeconfig (and whatever files it names), loaded as tp loads it. */
function setup(
  kubeconfig: (dir: string) => string,
  files: Record<string, string> = {},
  context?: string,
) {
  const dir = mkdtempSync(join(tmpdir(), 'tp-dkc-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const path = join(dir, 'config');
  writeFileSync(path, kubeconfig(dir));
  return { dir, ...loadKubeConfig({ kubeconfig: path, ...(context ? { context } : {}) }, {}) };
}

/** One cluster, user and context, all named `name`. */
function single(name: string, cluster: string, user: string, namespace = 'default'): string {
  return `apiVersion: v1
kind: Config
current-context: ${name}
clusters:
- name: ${name}
  cluster:
${cluster.replace(/^/gm, '    ')}
users:
- name: ${name}
  user:
${user.replace(/^/gm, '    ')}
contexts:
- name: ${name}
  context: {cluster: ${name}, user: ${name}, namespace: ${namespace}}
`;
}

const parse = (text: string): KubeconfigJson => JSON.parse(text) as KubeconfigJson;

test('only the chosen context, its cluster and its user survive, with their files embedded', (t) => {
  const { kc, target } = setup(
    () => `apiVersion: v1
kind: Config
current-context: other
clusters:
- name: lab
  cluster: {server: "https://api.lab.example:6443", certificate-authority: ca.crt}
- name: prod
  cluster: {server: "https://api.prod.example:6443", certificate-authority-data: ${b64('prod ca')}}
users:
- name: lab-admin
  user: {client-certificate: client.crt, client-key: client.key}
- name: prod-admin
  user: {token: prod-token}
contexts:
- name: lab
  context: {cluster: lab, user: lab-admin, namespace: samples}
- name: other
  context: {cluster: prod, user: prod-admin}
`,
    { 'ca.crt': CA, 'client.crt': CERT, 'client.key': KEY },
    'lab',
  );
  const out = daemonKubeconfig(kc, target);
  t.like(out, { server: 'https://api.lab.example:6443', rewritten: false });
  t.is(out.verifyHostname, undefined);
  const json = parse(out.text);
  t.is(json['current-context'], 'lab');
  t.deepEqual(json.clusters, [
    {
      name: 'lab',
      cluster: {
        server: 'https://api.lab.example:6443',
        'certificate-authority-data': b64(CA),
      },
    },
  ]);
  t.deepEqual(json.users, [
    {
      name: 'lab-admin',
      user: { 'client-certificate-data': b64(CERT), 'client-key-data': b64(KEY) },
    },
  ]);
  t.deepEqual(json.contexts, [
    { name: 'lab', context: { cluster: 'lab', user: 'lab-admin', namespace: 'samples' } },
  ]);
  t.notRegex(out.text, /prod|ca\.crt|client\.key/);
});

test('a credential file that is missing is a config error naming the file and the fix', (t) => {
  const { kc, target, dir } = setup(() =>
    single(
      'lab',
      'server: https://api.lab.example:6443',
      'client-certificate: gone.crt\nclient-key: gone.key',
    ),
  );
  const err = t.throws(() => daemonKubeconfig(kc, target), { instanceOf: TpError });
  t.like(err, { category: 'config', code: 'KUBE_CREDENTIAL_FILE_MISSING' });
  t.true(err.message.includes(join(dir, 'gone.crt')));
  t.regex(err.message, /ENOENT/);
  t.regex(err.fix, /kubectl --context lab version/);
});

test('an exec credential plugin is refused: the daemon container cannot run it', (t) => {
  const { kc, target } = setup(() =>
    single(
      'cloud',
      'server: https://api.cloud.example',
      'exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: gke-gcloud-auth-plugin\n  interactiveMode: Never',
    ),
  );
  const err = t.throws(() => daemonKubeconfig(kc, target), { instanceOf: TpError });
  t.like(err, { category: 'config', code: 'KUBE_EXEC_AUTH_UNSUPPORTED' });
  t.regex(err.message, /gke-gcloud-auth-plugin/);
  t.regex(err.message, /daemon container cannot run host-side credential plugins/);
  t.regex(err.fix, /token or a client certificate/);
  t.regex(err.fix, /kubectl --context cloud create token/);
});

test('an auth-provider user is refused like an exec plugin', (t) => {
  const { kc, target } = setup(() =>
    single(
      'oidc',
      'server: https://api.example',
      'auth-provider:\n  name: oidc\n  config: {idp-issuer-url: "https://issuer.example"}',
    ),
  );
  const err = t.throws(() => daemonKubeconfig(kc, target), { instanceOf: TpError });
  t.like(err, { code: 'KUBE_EXEC_AUTH_UNSUPPORTED' });
  t.regex(err.message, /auth-provider "oidc"/);
});

test('a token file is read and embedded as the token, without its trailing newline', (t) => {
  const { kc, target } = setup(
    (dir) => single('lab', 'server: https://api.lab.example', `token-file: ${join(dir, 'token')}`),
    { token: 'sa-token-123\n' },
  );
  t.deepEqual(parse(daemonKubeconfig(kc, target).text).users[0]?.user, { token: 'sa-token-123' });
});

test('a loopback IP server is rewritten to the host alias, keeping the port, and verified as the IP', (t) => {
  const { kc, target } = setup(() =>
    single(
      'kind',
      `server: https://127.0.0.1:6443\ncertificate-authority-data: ${b64(CA)}`,
      'token: t',
    ),
  );
  const out = daemonKubeconfig(kc, target);
  t.deepEqual(
    { ...out, text: undefined },
    {
      text: undefined,
      server: 'https://host.docker.internal:6443',
      verifyHostname: '127.0.0.1',
      originalServer: 'https://127.0.0.1:6443',
      rewritten: true,
    },
  );
  const json = parse(out.text);
  t.deepEqual(json.clusters[0]?.cluster, {
    server: 'https://host.docker.internal:6443',
    'certificate-authority-data': b64(CA),
  });
  t.false('tls-server-name' in (json.clusters[0]?.cluster ?? {}), 'an IP is never sent as SNI');
  t.deepEqual(json.extensions, [
    {
      name: 'tp',
      extension: { originalServer: 'https://127.0.0.1:6443', verifyHostname: '127.0.0.1' },
    },
  ]);
});

test('every loopback spelling is rewritten; a DNS name is also kept as tls-server-name', (t) => {
  const cases: [string, string, string | undefined][] = [
    ['https://localhost:6443', 'localhost', 'localhost'],
    ['https://127.1.2.3:7443', '127.1.2.3', undefined],
    ['https://[::1]:6443', '::1', undefined],
    ['https://0.0.0.0:6550', '0.0.0.0', undefined],
    ['https://localhost', 'localhost', 'localhost'],
  ];
  for (const [server, verify, sni] of cases) {
    const { kc, target } = setup(() => single('c', `server: ${server}`, 'token: t'));
    const out = daemonKubeconfig(kc, target, { hostAlias: 'gw.internal' });
    const port = new URL(server).port;
    t.is(out.server, `https://gw.internal${port ? `:${port}` : ''}`, server);
    t.is(out.verifyHostname, verify, server);
    t.is(parse(out.text).clusters[0]?.cluster['tls-server-name'], sni, server);
  }
});

test('a remote server is left as it is', (t) => {
  const { kc, target } = setup(() =>
    single('remote', 'server: https://198.18.0.1:6443\ninsecure-skip-tls-verify: true', 'token: t'),
  );
  const out = daemonKubeconfig(kc, target);
  t.like(out, {
    server: 'https://198.18.0.1:6443',
    originalServer: 'https://198.18.0.1:6443',
    rewritten: false,
  });
  t.false('verifyHostname' in out);
  t.deepEqual(parse(out.text).clusters[0]?.cluster, {
    server: 'https://198.18.0.1:6443',
    'insecure-skip-tls-verify': true,
  });
  t.deepEqual(parse(out.text).extensions[0]?.extension, {
    originalServer: 'https://198.18.0.1:6443',
  });
});

test('a server override replaces the server and keeps the name the certificate was issued for', (t) => {
  const byName = setup(() =>
    single('c', 'server: https://kind-control-plane.local:6443', 'token: t'),
  );
  const named = daemonKubeconfig(byName.kc, byName.target, {
    server: 'https://kind-control-plane:6443/',
  });
  t.like(named, {
    server: 'https://kind-control-plane:6443',
    verifyHostname: 'kind-control-plane.local',
    rewritten: true,
  });
  t.is(parse(named.text).clusters[0]?.cluster['tls-server-name'], 'kind-control-plane.local');

  const byIp = setup(() => single('c', 'server: https://127.0.0.1:40123', 'token: t'));
  const ip = daemonKubeconfig(byIp.kc, byIp.target, { server: 'https://tp-lab-cp:6443' });
  t.like(ip, { server: 'https://tp-lab-cp:6443', verifyHostname: '127.0.0.1' });
  t.false('tls-server-name' in (parse(ip.text).clusters[0]?.cluster ?? {}));

  const err = t.throws(() => daemonKubeconfig(byIp.kc, byIp.target, { server: 'tp-lab-cp:6443' }), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'usage', code: 'KUBE_SERVER_INVALID' });
});

test('a tls-server-name in the kubeconfig is kept and is the name verified', (t) => {
  const { kc, target } = setup(() =>
    single('c', 'server: https://127.0.0.1:6443\ntls-server-name: kubernetes.default', 'token: t'),
  );
  const out = daemonKubeconfig(kc, target);
  t.is(out.verifyHostname, 'kubernetes.default');
  t.is(parse(out.text).clusters[0]?.cluster['tls-server-name'], 'kubernetes.default');
});

test('the daemon reads its kubeconfig back: context, server and the name to verify', (t) => {
  const { kc, target } = setup(() =>
    single(
      'lab',
      `server: https://127.0.0.1:6443\ncertificate-authority-data: ${b64(CA)}`,
      'token: t',
      'samples',
    ),
  );
  const text = daemonKubeconfig(kc, target).text;
  const loaded = daemonAccess(text);
  t.is(loaded.server, 'https://host.docker.internal:6443');
  t.is(loaded.verifyHostname, '127.0.0.1');
  const json = parse(text);
  t.is(json['current-context'], 'lab');
  t.is(json.contexts[0]?.context.namespace, 'samples');
  t.is(loaded.transport.headers.Authorization, 'Bearer t');

  const err = t.throws(() => daemonAccess('{ not json'), { instanceOf: TpError });
  t.like(err, { category: 'config', code: 'DAEMON_KUBECONFIG_INVALID' });
  t.regex(err.fix, /\/run\/tp\/kubeconfig\.json/);
});

// A self-signed certificate valid 2000-2100 for IP 127.0.0.2 only: the "original" host.
const SERVER_CERT = `-----BEGIN CERTIFICATE-----
MIIBbDCCARKgAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBF0cC10ZXN0
LWFwaXNlcnZlcjAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowHDEa
MBgGA1UEAwwRdHAtdGVzdC1hcGlzZXJ2ZXIwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAASTXCaXhAxC3HcFBO555bg7c1gkH3WjbdZmNuxXLmR8jI+Bw/Fh7CHyTvbz
bpOc9tUiu87NsZA33PY30B4q2rTHo0MwQTAPBgNVHRMBAf8EBTADAQH/MA8GA1Ud
EQQIMAaHBH8AAAIwHQYDVR0OBBYEFCj7LufsGSKGZq6WRXIxI7ZzmUGxMAoGCCqG
SM49BAMCA0gAMEUCIQDlu4Fpj+2f5PH7Teff838T28dKaYQz3ZBIcAmncnbxNAIg
I17M71dD1rc2EyJ+0XJigjuau04ZVhUgKxKf2MFk3kw=
-----END CERTIFICATE-----
`;
const SERVER_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSWKj+eeuL1/bVHTu
zIlGGl0YMt+/9W7dp6X+8H6hEbChRANCAASTXCaXhAxC3HcFBO555bg7c1gkH3Wj
bdZmNuxXLmR8jI+Bw/Fh7CHyTvbzbpOc9tUiu87NsZA33PY30B4q2rTH
-----END PRIVATE KEY-----
`;

test('through the alias, the daemon verifies the certificate against the original IP and only that', async (t) => {
  const authorizations: (string | undefined)[] = [];
  const server = createServer({ cert: SERVER_CERT, key: SERVER_KEY }, (req, res) => {
    authorizations.push(req.headers.authorization);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ gitVersion: 'v1.33.0', platform: 'linux/amd64' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };

  // The kubeconfig says 127.0.0.2 (what the certificate holds); the alias reaches 127.0.0.1.
  const { kc, target } = setup(() =>
    single(
      'lab',
      `server: https://127.0.0.2:${port}\ncertificate-authority-data: ${b64(SERVER_CERT)}`,
      'token: sa-token',
    ),
  );
  const out = daemonKubeconfig(kc, target, { hostAlias: '127.0.0.1' });
  t.is(out.server, `https://127.0.0.1:${port}`);

  const pinned = daemonAccess(out.text);
  t.deepEqual(await getJson(pinned.transport, '/version', 5000), {
    gitVersion: 'v1.33.0',
    platform: 'linux/amd64',
  });
  t.deepEqual(authorizations, ['Bearer sa-token']);

  // Without the name to verify, the same certificate is rightly refused for 127.0.0.1.
  const json = parse(out.text);
  const unpinned = daemonAccess(JSON.stringify({ ...json, extensions: [] }));
  t.is(unpinned.verifyHostname, undefined);
  const err = await t.throwsAsync(getJson(unpinned.transport, '/version', 5000));
  t.like(err, { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
});
