import { TpCommand } from '../cli/base-command.js';
import { nameFlag } from '../cli/session-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { quitSession, type QuitResult } from '../session/quit.js';

export default class Quit extends TpCommand {
  static override summary =
    'End the session: stop the daemon and remove everything connect created in Docker.';
  static override description =
    'Workloads the session engages are restored first. tp-manager stays in the cluster for the next connect; `tp uninstall` removes it.';
  static override examples = [
    '<%= config.bin %> quit',
    '<%= config.bin %> quit --name tp-tp-lab-samples',
  ];
  static override flags = { ...nameFlag };

  async run(): Promise<QuitResult> {
    const { flags } = await this.parse(Quit);
    const result = await quitSession(DockerEngine.connect(), flags.name, this.progress());
    if (result.session === undefined) this.log('Not connected; nothing to do.');
    else {
      const restored = result.restored ?? [];
      this.log(
        `Session ${result.session} ended; ${restored.length === 0 ? '' : `restored ${restored.join(', ')}; `}removed ${result.removed.join(', ') || 'nothing'}.`,
      );
    }
    return result;
  }
}
