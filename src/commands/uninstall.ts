import { Flags } from '@oclif/core';
import { TpCommand } from '../cli/base-command.js';
import { kubeFlags, kubeSelection } from '../cli/flags.js';
import { DockerEngine } from '../docker/engine.js';
import { settingsFromEnv } from '../session/config.js';
import { uninstall, type UninstallResult } from '../session/quit.js';

export default class Uninstall extends TpCommand {
  static override summary = 'End every session and remove tp-manager from the cluster.';
  static override examples = ['<%= config.bin %> uninstall'];
  static override flags = {
    ...kubeFlags,
    'manager-namespace': Flags.string({
      description: 'Where tp-manager lives (default: $TP_MANAGER_NAMESPACE or tp-system).',
    }),
  };

  async run(): Promise<UninstallResult> {
    const { flags } = await this.parse(Uninstall);
    const ns = flags['manager-namespace'] ?? settingsFromEnv().managerNamespace;
    const r = await uninstall(DockerEngine.connect(), kubeSelection(flags), ns);
    this.log(
      [
        `Sessions ended: ${r.sessions.join(', ') || 'none'}`,
        `Removed from Docker: ${r.docker.join(', ') || 'nothing'}`,
        `Removed from the cluster: ${r.cluster.join(', ') || 'nothing'}`,
      ].join('\n'),
    );
    return r;
  }
}
