import { Flags } from '@oclif/core';

export const nameFlag = {
  name: Flags.string({
    description:
      'The session (daemon container) name; default tp-<context>-<namespace>, or the only session.',
  }),
};
