import { LABEL_SESSION } from '../lib/labels.js';

export const LABEL_CONTEXT = 'tp.context';
export const LABEL_NAMESPACE = 'tp.namespace';
export const LABEL_MANAGER_NAMESPACE = 'tp.manager-namespace';
export { LABEL_SESSION };

/** The daemon container's default name: tp-<context>-<namespace>, as Docker allows names. */
export function defaultSessionName(context: string, namespace: string): string {
  const clean = (s: string): string =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return `tp-${clean(context)}-${clean(namespace)}`.slice(0, 120);
}

export function validateSessionName(name: string): string | undefined {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,126}$/.test(name)
    ? undefined
    : 'a session name is letters, digits, "_", "." and "-", starting with a letter or digit';
}
