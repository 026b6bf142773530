import { TpCommand } from '../cli/base-command.js';
import { engageFlags, runEngagement, tapFlags, workloadArg } from '../cli/engage-flags.js';
import type { EngageResult } from '../engage/engage.js';

export default class Intercept extends TpCommand {
  static override summary =
    "Send a Service port's traffic (all of it, or the HTTP requests a filter matches) to the session; the app keeps serving the rest.";
  static override examples = [
    '<%= config.bin %> intercept web --http-header x-user=alice --port 8080:http --docker-run -- my/web:dev',
    '<%= config.bin %> intercept web --http-path-prefix /api --env-file web.env',
  ];
  static override args = workloadArg;
  // Everything after `--` is docker run's.
  static override strict = false;
  static override flags = { ...engageFlags, ...tapFlags };

  async run(): Promise<EngageResult> {
    const { args, flags } = await this.parse(Intercept);
    return runEngagement(
      this.output(),
      'intercept',
      args.workload,
      flags.port ?? [],
      flags,
      this.argv,
    );
  }
}
