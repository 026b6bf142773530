import { Flags } from '@oclif/core';
import { TpCommand } from '../cli/base-command.js';
import { engageFlags, engageOptionals, workloadArg } from '../cli/engage-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { engage, type EngageResult } from '../engage/engage.js';
import { renderEngagement } from '../render/engage.js';
import { settingsFromEnv } from '../session/config.js';

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
    const opts = engageOptionals(flags, this.argv);
    const result = await engage(
      DockerEngine.connect(),
      {
        mode: 'replace',
        workload: args.workload,
        ports: flags.port ?? [],
        settings: settingsFromEnv(),
        ...opts,
      },
      this.progress(),
      (active) => {
        if (opts.dockerRun !== undefined) this.logToStderr(renderEngagement(active));
      },
    );
    if (opts.dockerRun === undefined) this.log(renderEngagement(result));
    if (result.exitCode !== undefined) process.exitCode = result.exitCode;
    return result;
  }
}
