import { Flags } from '@oclif/core';

/**
 * One selector for every command that acts on a session: --name, or TP_SESSION where a flag
 * cannot be given (`tp curl` passes all its arguments to curl). oclif reads the environment
 * only when the flag is absent, so --name wins.
 */
export const nameFlag = {
  name: Flags.string({
    description: 'The session (its daemon container name); default: the only session there is.',
    env: 'TP_SESSION',
  }),
};

export const connectNameFlag = {
  name: Flags.string({
    description: 'The session (its daemon container name); default tp-<context>-<namespace>.',
    env: 'TP_SESSION',
  }),
};
