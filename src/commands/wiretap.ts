import { TpCommand } from '../cli/base-command.js';
import { engageFlags, runEngagement, tapFlags, workloadArg } from '../cli/engage-flags.js';
import type { EngageResult } from '../engage/engage.js';

export default class Wiretap extends TpCommand {
  static override summary =
    "Send the session a copy of a Service port's traffic (all of it, or the HTTP requests a filter matches); the app answers as before and the local answers are dropped.";
  static override examples = [
    '<%= config.bin %> wiretap web --port 8080:http --docker-run -- my/web:dev',
    '<%= config.bin %> wiretap web --http-path-prefix /api --env-file web.env',
  ];
  static override args = workloadArg;
  // Everything after `--` is docker run's.
  static override strict = false;
  static override flags = { ...engageFlags, ...tapFlags };

  async run(): Promise<EngageResult> {
    const { args, flags } = await this.parse(Wiretap);
    return runEngagement(
      this.output(),
      'wiretap',
      args.workload,
      flags.port ?? [],
      flags,
      this.argv,
    );
  }
}
