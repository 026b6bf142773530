import { Flags } from '@oclif/core';
import { TpCommand } from '../cli/base-command.js';
import { kubeFlags, kubeSelection } from '../cli/flags.js';
import { DockerEngine } from '../docker/engine.js';
import { renderWorkloads } from '../render/workloads.js';
import { listNamespaceWorkloads, type ListResult } from '../session/list.js';

export default class List extends TpCommand {
  static override summary = "List the namespace's workloads and whether they can be engaged.";
  static override examples = ['<%= config.bin %> list', '<%= config.bin %> list -n samples --json'];
  static override flags = {
    ...kubeFlags,
    namespace: Flags.string({
      char: 'n',
      description: "The namespace (default: the connected session's, else the context's).",
    }),
  };

  async run(): Promise<ListResult> {
    const { flags } = await this.parse(List);
    const result = await listNamespaceWorkloads(
      DockerEngine.connect(),
      kubeSelection(flags),
      flags.namespace,
    );
    this.log(renderWorkloads(result));
    return result;
  }
}
