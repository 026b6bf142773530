import type { Cluster, KubeConfig, User } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { contains } from '../lib/cidr.js';
import { TpError, messageOf, systemErrorCode } from '../lib/errors.js';
import type { KubeTarget } from './kubeconfig.js';
import { DAEMON_KUBECONFIG_PATH } from '../contract/session.js';

export { DAEMON_KUBECONFIG_PATH };

/** The name of tp's entry in the kubeconfig's standard top-level `extensions` list. */
const EXTENSION = 'tp';

export interface DaemonKubeconfigOptions {
  /** The name under which the daemon container reaches the host; default host.docker.internal. */
  hostAlias?: string;
  /** The API server as the container must reach it, e.g. https://<control-plane>:6443. */
  server?: string;
}

export interface DaemonKubeconfig {
  /** JSON kubeconfig text: one context, its cluster and its user, every file embedded. */
  text: string;
  /** The API server as seen from the container. */
  server: string;
  /** The name the API server's certificate must hold, when the server was rewritten. */
  verifyHostname?: string;
  /** The API server as written in the user's kubeconfig. */
  originalServer: string;
  rewritten: boolean;
}

interface TpExtension {
  verifyHostname?: string;
  originalServer: string;
}

/**
 * Builds the kubeconfig for the daemon container from the user's chosen context. Files are
 * embedded because the container cannot see the host's; a loopback API server is replaced
 * by `hostAlias` (or by `opts.server`), and the name the certificate was issued for is kept
 * so that TLS verification still holds: as tls-server-name when it is a DNS name, and always
 * as `verifyHostname`, because an IP address cannot be sent as SNI and Node only checks the
 * certificate against the servername or the host it connects to.
 */
export function daemonKubeconfig(
  kc: KubeConfig,
  target: KubeTarget,
  opts: DaemonKubeconfigOptions = {},
): DaemonKubeconfig {
  const context = kc.getContextObject(target.context);
  const cluster = context === null ? null : kc.getCluster(context.cluster);
  if (context === null || cluster === null) {
    throw new TpError('internal', `Context "${target.context}" vanished from the kubeconfig.`, {
      code: 'KUBECONTEXT_VANISHED',
      fix: 'Report this as a bug in tp.',
    });
  }
  const user = (context.user as string | undefined) ? kc.getUser(context.user) : null;
  const where = target.files.join(', ');

  const originalServer = cluster.server;
  const original = parseServer(originalServer, `cluster "${cluster.name}" in ${where}`);
  let server = originalServer;
  if (opts.server !== undefined) {
    parseServer(opts.server, 'given for the daemon container');
    server = opts.server.replace(/\/+$/, '');
  } else if (isLoopback(original.host)) {
    server = withHost(original.url, opts.hostAlias ?? 'host.docker.internal');
  }
  const rewritten = server !== originalServer;
  // The certificate names what the user's kubeconfig asked for, not the alias.
  const verifyHostname = rewritten ? (cluster.tlsServerName ?? original.host) : undefined;
  const tlsServerName =
    cluster.tlsServerName ??
    (verifyHostname !== undefined && isIP(verifyHostname) === 0 ? verifyHostname : undefined);

  const extension: TpExtension = {
    originalServer,
    ...(verifyHostname === undefined ? {} : { verifyHostname }),
  };
  const userName = user?.name ?? `${context.name}-user`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': context.name,
    clusters: [
      {
        name: cluster.name,
        cluster: clusterFields(cluster, server, tlsServerName, target),
      },
    ],
    // An empty user rather than none: client-node applies the CA only when a user exists.
    users: [{ name: userName, user: user === null ? {} : userFields(user, target) }],
    contexts: [
      {
        name: context.name,
        context: { cluster: cluster.name, user: userName, namespace: target.namespace },
      },
    ],
    extensions: [{ name: EXTENSION, extension }],
  };
  return {
    text: `${JSON.stringify(config, null, 2)}\n`,
    server,
    originalServer,
    rewritten,
    ...(verifyHostname === undefined ? {} : { verifyHostname }),
  };
}

function parseServer(server: string, what: string): { url: URL; host: string } {
  let url: URL;
  try {
    url = new URL(server);
  } catch (err) {
    throw new TpError('usage', `The API server "${server}" (${what}) is not a URL.`, {
      code: 'KUBE_SERVER_INVALID',
      fix: 'Give the API server as https://<host>:<port>.',
      cause: err,
    });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TpError('usage', `The API server "${server}" (${what}) is not http(s).`, {
      code: 'KUBE_SERVER_INVALID',
      fix: 'Give the API server as https://<host>:<port>.',
    });
  }
  return { url, host: url.hostname.replace(/^\[(.*)\]$/, '$1') };
}

/**
 * Hosts that mean "this machine" on the host and "this container" inside one. The unspecified
 * addresses are included because some tools (k3d) write https://0.0.0.0:<port>.
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const family = isIP(h);
  if (family === 4) return h === '0.0.0.0' || contains('127.0.0.0/8', h);
  if (family === 6) return contains('::1/128', h) || contains('::/128', h);
  return false;
}

function withHost(url: URL, host: string): string {
  const hostPart = isIP(host) === 6 ? `[${host}]` : host;
  const port = url.port === '' ? '' : `:${url.port}`;
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  return `${url.protocol}//${hostPart}${port}${path}`;
}

function clusterFields(
  cluster: Cluster,
  server: string,
  tlsServerName: string | undefined,
  target: KubeTarget,
): Record<string, unknown> {
  const caData =
    cluster.caData ??
    (cluster.caFile
      ? embed(cluster.caFile, `certificate-authority of cluster "${cluster.name}"`, target)
      : undefined);
  return {
    server,
    ...(caData === undefined ? {} : { 'certificate-authority-data': caData }),
    ...(cluster.skipTLSVerify ? { 'insecure-skip-tls-verify': true } : {}),
    ...(tlsServerName === undefined ? {} : { 'tls-server-name': tlsServerName }),
    ...(cluster.proxyUrl ? { 'proxy-url': cluster.proxyUrl } : {}),
  };
}

function userFields(user: User, target: KubeTarget): Record<string, unknown> {
  if (user.exec) {
    const command = (user.exec as { command?: unknown }).command;
    throw credentialPluginError(
      user,
      target,
      `runs the credential plugin ${typeof command === 'string' ? `"${command}"` : '(exec)'}`,
    );
  }
  let token = user.token;
  if (user.authProvider) {
    const provider = user.authProvider as { name?: unknown; config?: { tokenFile?: unknown } };
    // client-node's own form for a token read from a file; any other provider runs code.
    if (provider.name === 'tokenFile' && typeof provider.config?.tokenFile === 'string') {
      token = readCredential(
        provider.config.tokenFile,
        `token file of user "${user.name}"`,
        target,
      ).toString('utf8');
    } else {
      throw credentialPluginError(
        user,
        target,
        `uses the auth-provider "${typeof provider.name === 'string' ? provider.name : '?'}"`,
      );
    }
  }
  const certData =
    user.certData ??
    (user.certFile
      ? embed(user.certFile, `client-certificate of user "${user.name}"`, target)
      : undefined);
  const keyData =
    user.keyData ??
    (user.keyFile ? embed(user.keyFile, `client-key of user "${user.name}"`, target) : undefined);
  // kubectl trims token files; a trailing newline would make an invalid Authorization header.
  const trimmed = token?.trim();
  return {
    ...(certData ? { 'client-certificate-data': certData } : {}),
    ...(keyData ? { 'client-key-data': keyData } : {}),
    ...(trimmed ? { token: trimmed } : {}),
    ...(user.username ? { username: user.username } : {}),
    ...(user.password ? { password: user.password } : {}),
    ...(user.impersonateUser ? { as: user.impersonateUser } : {}),
  };
}

function credentialPluginError(user: User, target: KubeTarget, what: string): TpError {
  return new TpError(
    'config',
    `User "${user.name}" of context "${target.context}" ${what}; the daemon container cannot run host-side credential plugins.`,
    {
      code: 'KUBE_EXEC_AUTH_UNSUPPORTED',
      fix: `Use a context whose user has a token or a client certificate, e.g. a service-account token from \`kubectl --context ${target.context} create token <service-account>\` set with \`kubectl config set-credentials <user> --token=<token>\`.`,
    },
  );
}

function readCredential(file: string, what: string, target: KubeTarget): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TpError(
      'config',
      `The ${what} in ${target.files.join(', ')} is ${file}, which cannot be read (${systemErrorCode(err) ?? messageOf(err)}).`,
      {
        code: 'KUBE_CREDENTIAL_FILE_MISSING',
        fix: `Restore ${file} or correct the path in the kubeconfig; \`kubectl --context ${target.context} version\` must work first.`,
        cause: err,
      },
    );
  }
}

function embed(file: string, what: string, target: KubeTarget): string {
  return readCredential(file, what, target).toString('base64');
}
