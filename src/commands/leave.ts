import { TpCommand } from '../cli/base-command.js';
import { useFlag, workloadArg } from '../cli/engage-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { leave, type LeaveResult } from '../engage/engage.js';
import { renderLeave } from '../render/engage.js';

export default class Leave extends TpCommand {
  static override summary =
    "End this session's engagement of a workload; the last one to leave restores it exactly.";
  static override examples = [
    '<%= config.bin %> leave echo',
    '<%= config.bin %> leave statefulset/store',
  ];
  static override args = workloadArg;
  static override flags = { ...useFlag };

  async run(): Promise<LeaveResult> {
    const { args, flags } = await this.parse(Leave);
    const result = await leave(
      DockerEngine.connect(),
      { workload: args.workload, ...(flags.use === undefined ? {} : { session: flags.use }) },
      this.progress(),
    );
    this.log(renderLeave(result));
    return result;
  }
}
