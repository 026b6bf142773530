import { Flags } from '@oclif/core';
import { TpCommand } from '../cli/base-command.js';
import { kubeFlags, kubeSelection } from '../cli/flags.js';
import { connectNameFlag } from '../cli/session-flags.js';
import { DockerEngine } from '../docker/engine.js';
import { renderConnect } from '../render/session.js';
import { settingsFromEnv } from '../session/config.js';
import { connectDocker, type ConnectResult } from '../session/connect.js';

export default class Connect extends TpCommand {
  static override summary =
    "Start a daemon container that puts its network namespace in the cluster's network.";
  static override description =
    'Containers started with `--network container:<daemon>` then reach services and pods by ClusterIP, pod IP and DNS name, as a pod in the namespace would. Installs tp-manager in the cluster on first use. Connecting again reports the running session; a running session is only ever ended by `tp quit` or --replace.';
  static override examples = [
    '<%= config.bin %> connect --docker',
    '<%= config.bin %> connect --docker --namespace samples --also-proxy 198.18.200.0/24',
    '<%= config.bin %> connect --docker --replace',
  ];
  static override flags = {
    ...kubeFlags,
    ...connectNameFlag,
    docker: Flags.boolean({
      description: 'Run the daemon in a Docker container (the only mode tp has).',
      required: true,
    }),
    namespace: Flags.string({
      char: 'n',
      description: "The namespace (default: the context's namespace).",
    }),
    'also-proxy': Flags.string({
      description: 'Another CIDR to route to the cluster (repeatable).',
      multiple: true,
    }),
    'never-proxy': Flags.string({
      description: 'A CIDR never to route to the cluster (repeatable).',
      multiple: true,
    }),
    registry: Flags.string({
      description:
        'A registry the cluster pulls from, for the agent image (default: $TP_REGISTRY).',
    }),
    'manager-namespace': Flags.string({
      description: 'Where tp-manager lives (default: $TP_MANAGER_NAMESPACE or tp-system).',
    }),
    network: Flags.string({
      description:
        'A Docker network of yours the daemon also joins, so its containers are reached by name (repeatable). The session has its own network too.',
      multiple: true,
    }),
    replace: Flags.boolean({
      description:
        'End the running session of this name, as `tp quit` does (its joined containers lose the cluster), and start a new one.',
    }),
  };

  async run(): Promise<ConnectResult> {
    const { flags } = await this.parse(Connect);
    const settings = settingsFromEnv();
    if (flags.registry !== undefined) settings.registry = flags.registry;
    if (flags['manager-namespace'] !== undefined)
      settings.managerNamespace = flags['manager-namespace'];
    const result = await connectDocker(
      DockerEngine.connect(),
      {
        kube: kubeSelection(flags),
        ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
        ...(flags.name === undefined ? {} : { name: flags.name }),
        alsoProxy: flags['also-proxy'] ?? [],
        neverProxy: flags['never-proxy'] ?? [],
        settings,
        replace: flags.replace,
        networks: flags.network ?? [],
      },
      this.progress(),
    );
    this.log(renderConnect(result));
    return result;
  }
}
