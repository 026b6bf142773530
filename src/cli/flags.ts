import { Flags } from '@oclif/core';
import type { KubeSelection } from '../k8s/kubeconfig.js';

/** The kubectl-style flags every command that talks to the cluster takes. */
export const kubeFlags = {
  kubeconfig: Flags.string({
    description: 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).',
  }),
  context: Flags.string({
    description: 'The kubeconfig context to use (default: the current context).',
  }),
};

export function kubeSelection(flags: {
  kubeconfig?: string | undefined;
  context?: string | undefined;
}): KubeSelection {
  const sel: KubeSelection = {};
  if (flags.kubeconfig !== undefined) sel.kubeconfig = flags.kubeconfig;
  if (flags.context !== undefined) sel.context = flags.context;
  return sel;
}
