import { VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { TpError, messageOf, systemErrorCode } from '../lib/errors.js';
import type { KubeTarget } from './kubeconfig.js';
import { withTimeout } from './api-errors.js';

export interface ServerVersion {
  gitVersion: string;
  platform: string;
}

/** Asks the API server for /version, which any authenticated user may read. */
export async function serverVersion(
  kc: KubeConfig,
  target: KubeTarget,
  timeoutMs = 5000,
): Promise<ServerVersion> {
  const api = kc.makeApiClient(VersionApi);
  try {
    const info = await withTimeout(api.getCode(), timeoutMs);
    return { gitVersion: info.gitVersion, platform: info.platform };
  } catch (err) {
    throw clusterError(err, target);
  }
}

/** Maps a failed API call to what the user can do about it. */
export function clusterError(err: unknown, target: KubeTarget): TpError {
  if (err instanceof TpError) return err;
  const where = `the API server of context "${target.context}" (${target.server})`;
  const code = systemErrorCode(err) ?? systemErrorCode((err as { cause?: unknown }).cause);
  const status = (err as { code?: unknown }).code;
  if (status === 401 || status === 403) {
    return new TpError('config', `${where} rejected tp's credentials (HTTP ${status}).`, {
      code: 'CLUSTER_UNAUTHORIZED',
      fix: 'Refresh the credentials in your kubeconfig; `kubectl version` must work first.',
      cause: err,
    });
  }
  if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return new TpError('config', `TLS to ${where} failed (${code}).`, {
      code: 'CLUSTER_TLS',
      fix: "Check the cluster's certificate-authority-data in your kubeconfig.",
      cause: err,
    });
  }
  return new TpError('unavailable', `No answer from ${where}: ${code ?? messageOf(err)}.`, {
    code: 'CLUSTER_UNREACHABLE',
    fix: 'Check that the cluster is running (`kubectl version`); in the lab, `sudo lab/up` starts it.',
    cause: err,
  });
}
