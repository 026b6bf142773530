import { TpCommand } from '../cli/base-command.js';
import { kubeFlags, kubeSelection } from '../cli/flags.js';
import { DockerEngine } from '../docker/engine.js';
import { renderVersion, versionReport, type VersionReport } from '../version/report.js';

export default class Version extends TpCommand {
  static override summary =
    'Show the versions of tp, its images, the Docker engine and the cluster.';
  static override description =
    'Parts that cannot be reached are reported with the reason; the command itself only fails on bad flags.';
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];
  static override flags = { ...kubeFlags };

  async run(): Promise<VersionReport> {
    const { flags } = await this.parse(Version);
    const report = await versionReport(DockerEngine.connect(), kubeSelection(flags));
    this.log(renderVersion(report));
    return report;
  }
}
