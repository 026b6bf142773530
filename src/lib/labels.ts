/**
 * Labels on everything tp creates, in Docker and (as annotations) in the cluster. Cleanup
 * finds what to remove by these labels and nothing else, so it never touches what tp did not
 * create.
 */
export const LABEL_MANAGED = 'tp.managed';
export const LABEL_VERSION = 'tp.version';
export const LABEL_COMPONENT = 'tp.component';
export const LABEL_SESSION = 'tp.session';
export const LABEL_CONTEXT_HASH = 'tp.context-hash';
/** On the copies of an engaged workload's mounts: `kind/name`, as `tp leave` names it. */
export const LABEL_WORKLOAD = 'tp.workload';

export type Component =
  'daemon' | 'agent' | 'joined' | 'publisher' | 'syncer' | 'network' | 'probe' | 'test' | 'volume';

export function tpLabels(
  version: string,
  component: Component,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_VERSION]: version,
    [LABEL_COMPONENT]: component,
    ...extra,
  };
}

/** A selector over tp labels; `tp.managed=true` is always part of it. */
export function labelSelector(extra: Readonly<Record<string, string>> = {}): string[] {
  return Object.entries({ [LABEL_MANAGED]: 'true', ...extra }).map(([k, v]) => `${k}=${v}`);
}
