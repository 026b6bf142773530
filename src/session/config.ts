/**
 * Settings that belong to the machine rather than to one command: where the agent image goes
 * so the cluster can pull it, prebuilt images to use instead of building, and how long a
 * session may be silent before tp-manager restores what it engages.
 */
import { TpError } from '../lib/errors.js';
import { DEFAULT_GRACE_SECONDS, GRACE_ENV, parseGrace } from '../lib/grace.js';
import { DEFAULT_MANAGER_NAMESPACE } from '../lib/k8s-keys.js';

export interface TpSettings {
  /** A registry the cluster pulls from, e.g. 127.0.0.1:5000 in the lab. */
  registry?: string;
  /** A published agent image to run instead of pushing tp's own build. */
  agentImage?: string;
  /** A daemon image to run instead of building one. */
  daemonImage?: string;
  managerNamespace: string;
  /**
   * Seconds without a heartbeat from a session after which tp-manager restores the workloads
   * it engages (TP_ENGAGEMENT_GRACE; 300 by default).
   */
  engagementGraceSeconds: number;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): TpSettings {
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const s: TpSettings = {
    managerNamespace: get('TP_MANAGER_NAMESPACE') ?? DEFAULT_MANAGER_NAMESPACE,
    engagementGraceSeconds: graceSetting(get(GRACE_ENV)),
  };
  const registry = get('TP_REGISTRY');
  if (registry !== undefined) s.registry = registry.replace(/\/+$/, '');
  const agentImage = get('TP_AGENT_IMAGE');
  if (agentImage !== undefined) s.agentImage = agentImage;
  const daemonImage = get('TP_DAEMON_IMAGE');
  if (daemonImage !== undefined) s.daemonImage = daemonImage;
  return s;
}

function graceSetting(text: string | undefined): number {
  if (text === undefined) return DEFAULT_GRACE_SECONDS;
  const grace = parseGrace(text);
  if ('seconds' in grace) return grace.seconds;
  throw new TpError('config', `${GRACE_ENV}: ${grace.error}.`, {
    code: 'ENGAGEMENT_GRACE_INVALID',
    fix: `Set ${GRACE_ENV} to seconds (300) or a duration such as 5m or 90s, between 3 s and a week, or unset it for 5 minutes.`,
  });
}
