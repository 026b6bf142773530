import { Flags } from '@oclif/core';
import { TpCommand } from '../cli/base-command.js';
import { engageFlags, runEngagement, workloadArg } from '../cli/engage-flags.js';
import type { EngageResult } from '../engage/engage.js';

export default class Replace extends TpCommand {
  static override summary =
    "Replace a workload's container with tp's agent: its traffic, env and volumes come to the session.";
  static override examples = [
    '<%= config.bin %> replace echo --env-file echo.env',
    '<%= config.bin %> replace multi --container web --port 9090:http --docker-run -- my/web:dev',
  ];
  static override args = workloadArg;
  // Everything after `--` is docker run's.
  static override strict = false;
  static override flags = {
    ...engageFlags,
    port: Flags.string({
      description:
        'local[:remote][/tcp|/udp]: the container port remote (a number or a name) goes to local in the session (repeatable; default: each declared port to the same number).',
      multiple: true,
    }),
  };

  async run(): Promise<EngageResult> {
    const { args, flags } = await this.parse(Replace);
    return runEngagement(
      this.output(),
      'replace',
      args.workload,
      flags.port ?? [],
      flags,
      this.argv,
    );
  }
}
