import { KubeConfig, type User } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { TpError } from '../lib/errors.js';

export interface KubeTarget {
  /** The files the configuration was read from. */
  files: string[];
  context: string;
  cluster: string;
  server: string;
  namespace: string;
}

export interface KubeSelection {
  /** An explicit kubeconfig file; otherwise $KUBECONFIG, then ~/.kube/config. */
  kubeconfig?: string;
  /** A context name; otherwise the current context. */
  context?: string;
}

export interface LoadedKubeConfig {
  kc: KubeConfig;
  target: KubeTarget;
}

export function kubeconfigFiles(
  sel: KubeSelection,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  if (sel.kubeconfig !== undefined) return [sel.kubeconfig];
  const fromEnv = env.KUBECONFIG;
  if (fromEnv !== undefined && fromEnv !== '')
    return fromEnv.split(delimiter).filter((p) => p !== '');
  return [join(env.HOME ?? homedir(), '.kube', 'config')];
}

/**
 * Loads the kubeconfig the way kubectl does, but refuses to guess: no file, no context or an
 * unknown context is an error that says how to fix it (client-node would otherwise fall back
 * to http://localhost:8080 without a word).
 */
export function loadKubeConfig(
  sel: KubeSelection = {},
  env: NodeJS.ProcessEnv = process.env,
): LoadedKubeConfig {
  const files = kubeconfigFiles(sel, env).filter((f) => existsSync(f));
  if (files.length === 0) {
    const looked = kubeconfigFiles(sel, env).join(', ');
    throw new TpError('config', `No kubeconfig found (looked at ${looked}).`, {
      code: 'KUBECONFIG_MISSING',
      fix: 'Point KUBECONFIG (or --kubeconfig) at your cluster config; in the lab, `sudo lab/up` writes the tp-lab context.',
    });
  }
  const kc = new KubeConfig();
  try {
    if (files.length === 1 && files[0] !== undefined) kc.loadFromFile(files[0]);
    else kc.loadFromString(mergeKubeconfigs(files));
  } catch (err) {
    throw new TpError('config', `The kubeconfig in ${files.join(', ')} cannot be read.`, {
      code: 'KUBECONFIG_INVALID',
      fix: 'Check it with `kubectl config view`; it must be valid YAML with clusters, users and contexts.',
      cause: err,
    });
  }
  const contextName = sel.context ?? kc.getCurrentContext();
  if (contextName === '' || (contextName as string | null) === null) {
    throw new TpError('config', `The kubeconfig in ${files.join(', ')} has no current context.`, {
      code: 'KUBECONTEXT_UNSET',
      fix: 'Choose one with `kubectl config use-context <name>` or pass --context.',
    });
  }
  const context = kc.getContextObject(contextName);
  if (context === null) {
    const known = kc.getContexts().map((c) => c.name);
    throw new TpError('usage', `There is no context named "${contextName}".`, {
      code: 'KUBECONTEXT_UNKNOWN',
      fix: `Use one of: ${known.length > 0 ? known.join(', ') : '(none defined)'}.`,
    });
  }
  kc.setCurrentContext(contextName);
  const cluster = kc.getCluster(context.cluster);
  if (cluster === null) {
    throw new TpError('config', `Context "${contextName}" names a cluster that is not defined.`, {
      code: 'KUBECLUSTER_MISSING',
      fix: `Add cluster "${context.cluster}" to the kubeconfig, or pick another context.`,
    });
  }
  return {
    kc,
    target: {
      files,
      context: contextName,
      cluster: cluster.name,
      server: cluster.server,
      namespace: context.namespace ?? 'default',
    },
  };
}

/** Who the chosen context says the user is, without carrying any credential in clear. */
export interface KubeIdentity {
  /** The kubeconfig's name for the user entry. */
  user: string;
  /**
   * A short hash of the server, the user's name and what identifies them (client certificate,
   * token, basic-auth user name, exec command), so two kubeconfigs that name the same user
   * differently, or the same name with other credentials, tell apart.
   */
  hash: string;
}

export function kubeIdentity(kc: KubeConfig, target: KubeTarget): KubeIdentity {
  const context = kc.getContextObject(target.context);
  const userName = context?.user ?? '';
  const user = userName === '' ? null : kc.getUser(userName);
  const parts = {
    server: target.server,
    user: userName,
    ...(user === null ? {} : credentialParts(user)),
  };
  const hash = createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
  return { user: userName, hash };
}

/**
 * What names the user, not what proves it: the client certificate (never the key), the token,
 * the basic-auth user, the exec plugin's command line. A file is read so that a flattened copy
 * of a kubeconfig has the identity of the original.
 */
function credentialParts(user: User): Record<string, string> {
  const out: Record<string, string> = {};
  const fileOr = (path: string): string => {
    try {
      return readFileSync(path).toString('base64');
    } catch {
      // Unreadable here; the path still says which credential it is.
      return path;
    }
  };
  if (user.certData !== undefined) out.cert = user.certData.replace(/\s+/g, '');
  else if (user.certFile !== undefined) out.cert = fileOr(user.certFile);
  if (user.token !== undefined) out.token = user.token;
  if (user.username !== undefined) out.username = user.username;
  if (user.impersonateUser !== undefined) out.impersonate = user.impersonateUser;
  const exec = user.exec as { command?: unknown; args?: unknown } | undefined;
  if (exec !== undefined) out.exec = JSON.stringify([exec.command, exec.args]);
  // A provider's access and refresh tokens change as they are refreshed; who issues them does not.
  const provider = user.authProvider as
    { name?: unknown; config?: Record<string, unknown> } | undefined;
  if (provider !== undefined) {
    const c = provider.config ?? {};
    out.authProvider = JSON.stringify([
      provider.name,
      c['client-id'],
      c['idp-issuer-url'],
      c.tokenFile,
    ]);
  }
  return out;
}

/**
 * kubectl merges a KUBECONFIG list with first-wins semantics; client-node only merges through
 * loadFromDefault, which also falls back silently. Merge the files ourselves instead.
 */
function mergeKubeconfigs(files: string[]): string {
  const configs = files.map((f) => {
    const kc = new KubeConfig();
    kc.loadFromFile(f);
    return kc;
  });
  const merged = new KubeConfig();
  merged.loadFromOptions({
    clusters: firstWins(configs.flatMap((kc) => kc.getClusters())),
    users: firstWins(configs.flatMap((kc) => kc.getUsers())),
    contexts: firstWins(configs.flatMap((kc) => kc.getContexts())),
    currentContext: configs.map((kc) => kc.getCurrentContext()).find((c) => c !== '') ?? '',
  });
  return merged.exportConfig();
}

function firstWins<T extends { name: string }>(items: T[]): T[] {
  const byName = new Map<string, T>();
  for (const item of items) if (!byName.has(item.name)) byName.set(item.name, item);
  return [...byName.values()];
}
