import { TpCommand } from '../cli/base-command.js';
import { engageFlags, runEngagement, workloadArg } from '../cli/engage-flags.js';
import type { EngageResult } from '../engage/engage.js';

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
    return runEngagement(this.output(), 'ingest', args.workload, [], flags, this.argv);
  }
}
