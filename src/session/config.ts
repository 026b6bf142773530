/**
 * Settings that belong to the machine rather than to one command: where the agent image goes
 * so the cluster can pull it, and prebuilt images to use instead of building.
 */
export interface TpSettings {
  /** A registry the cluster pulls from, e.g. 127.0.0.1:5000 in the lab. */
  registry?: string;
  /** A published agent image to run instead of pushing tp's own build. */
  agentImage?: string;
  /** A daemon image to run instead of building one. */
  daemonImage?: string;
  managerNamespace: string;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): TpSettings {
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const s: TpSettings = { managerNamespace: get('TP_MANAGER_NAMESPACE') ?? 'tp-system' };
  const registry = get('TP_REGISTRY');
  if (registry !== undefined) s.registry = registry.replace(/\/+$/, '');
  const agentImage = get('TP_AGENT_IMAGE');
  if (agentImage !== undefined) s.agentImage = agentImage;
  const daemonImage = get('TP_DAEMON_IMAGE');
  if (daemonImage !== undefined) s.daemonImage = daemonImage;
  return s;
}
