import { TpCommand } from '../cli/base-command.js';
import { nameFlag } from '../cli/session-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { renderStatusReport } from '../render/session.js';
import { statusReport, type StatusReport, type StatusReports } from '../session/status.js';

export default class Status extends TpCommand {
  static override summary =
    'Show the session: daemon, cluster, namespace, routes, DNS, manager, tunnel.';
  static override description =
    'Without --name or TP_SESSION and with several sessions, shows every one of them (with --json, as {"sessions": [...]}).';
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --name tp-tp-lab-samples --json',
  ];
  static override flags = { ...nameFlag };

  async run(): Promise<StatusReport | StatusReports> {
    const { flags } = await this.parse(Status);
    const report = await statusReport(DockerEngine.connect(), flags.name);
    this.log(renderStatusReport(report, flags.name));
    return report;
  }
}
