import { TpCommand } from '../cli/base-command.js';
import { engageFlags, engageOptionals, workloadArg } from '../cli/engage-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { engage, type EngageResult } from '../engage/engage.js';
import { renderEngagement } from '../render/engage.js';
import { settingsFromEnv } from '../session/config.js';

export default class Ingest extends TpCommand {
  static override summary =
    "Ingest a workload's container: its env and read-only volumes come to the session; no traffic moves.";
  static override examples = [
    '<%= config.bin %> ingest volumes --env-file volumes.env',
    '<%= config.bin %> ingest volumes --docker-run -- -it debian:bookworm-slim bash',
  ];
  static override args = workloadArg;
  // Everything after `--` is docker run's.
  static override strict = false;
  static override flags = engageFlags;

  async run(): Promise<EngageResult> {
    const { args, flags } = await this.parse(Ingest);
    const opts = engageOptionals(flags, this.argv);
    const result = await engage(
      DockerEngine.connect(),
      { mode: 'ingest', workload: args.workload, ports: [], settings: settingsFromEnv(), ...opts },
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
