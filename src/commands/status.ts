import { TpCommand } from '../cli/base-command.js';
import { nameFlag } from '../cli/session-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { renderStatus } from '../render/session.js';
import { statusReport, type StatusReport } from '../session/status.js';

export default class Status extends TpCommand {
  static override summary =
    'Show the session: daemon, cluster, namespace, routes, DNS, manager, tunnel.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];
  static override flags = { ...nameFlag };

  async run(): Promise<StatusReport> {
    const { flags } = await this.parse(Status);
    const report = await statusReport(DockerEngine.connect(), flags.name);
    if (report.session === undefined)
      this.log('Not connected. Connect with `tp connect --docker`.');
    else this.log(renderStatus(report.session, report.status, report.error));
    return report;
  }
}
