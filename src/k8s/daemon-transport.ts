/**
 * The daemon's API access, read straight from the kubeconfig tp wrote for it (one context,
 * everything embedded, no credential plugins). Importing @kubernetes/client-node for this
 * would cost the daemon about 75 MiB of memory for what is a handful of fields.
 */
import { checkServerIdentity } from 'node:tls';
import { DAEMON_KUBECONFIG_PATH } from '../contract/session.js';
import { TpError } from '../lib/errors.js';
import type { KubeTransport } from './transport.js';

interface Named<T> {
  name: string;
  [key: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

type Fields = Record<string, unknown>;

export interface DaemonAccess {
  transport: KubeTransport;
  server: string;
  verifyHostname?: string;
}

const b64 = (v: unknown): Buffer | undefined =>
  typeof v === 'string' && v !== '' ? Buffer.from(v, 'base64') : undefined;

export function daemonAccess(text: string): DaemonAccess {
  const invalid = (why: string): TpError =>
    new TpError('config', `The daemon's kubeconfig is unusable: ${why}.`, {
      code: 'DAEMON_KUBECONFIG_INVALID',
      fix: `It is written by \`tp connect --docker\` to ${DAEMON_KUBECONFIG_PATH}; connect again to rewrite it.`,
    });
  let doc: {
    'current-context'?: string;
    contexts?: Named<Fields>[];
    clusters?: Named<Fields>[];
    users?: Named<Fields>[];
    extensions?: { name?: string; extension?: { verifyHostname?: unknown } }[];
  };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw invalid('it is not JSON');
  }
  const ctx = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
  const cluster = doc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === ctx?.user)?.user ?? {};
  const server = cluster?.server;
  if (cluster === undefined || typeof server !== 'string')
    throw invalid('its current context names no cluster');
  const verify = doc.extensions?.find((e) => e.name === 'tp')?.extension?.verifyHostname;
  const tls: KubeTransport['tls'] = {};
  const ca = b64(cluster['certificate-authority-data']);
  if (ca !== undefined) tls.ca = ca;
  const cert = b64(user['client-certificate-data']);
  if (cert !== undefined) tls.cert = cert;
  const key = b64(user['client-key-data']);
  if (key !== undefined) tls.key = key;
  if (cluster['insecure-skip-tls-verify'] === true) tls.rejectUnauthorized = false;
  const sni = cluster['tls-server-name'];
  if (typeof sni === 'string' && sni !== '') tls.servername = sni;
  if (typeof verify === 'string' && verify !== '') {
    tls.checkServerIdentity = (_host, c) => checkServerIdentity(verify, c);
  }
  const headers: Record<string, string> = {};
  if (typeof user.token === 'string' && user.token !== '')
    headers.Authorization = `Bearer ${user.token}`;
  else if (typeof user.username === 'string' && typeof user.password === 'string') {
    headers.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
  }
  return {
    transport: { server: new URL(server), tls, headers },
    server,
    ...(typeof verify === 'string' && verify !== '' ? { verifyHostname: verify } : {}),
  };
}
