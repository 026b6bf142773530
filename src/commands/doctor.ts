import { Flags } from '@oclif/core';
import { TpCommand } from '../cli/base-command.js';
import { kubeFlags, kubeSelection } from '../cli/flags.js';
import { DockerEngine } from '../docker/engine.js';
import { renderDoctor, runDoctor, type DoctorReport } from '../doctor/checks.js';
import { exitCodes } from '../lib/errors.js';

export default class Doctor extends TpCommand {
  static override summary =
    'Check that everything tp needs is in place, and say how to fix what is not.';
  static override description =
    'Checks the Docker engine, the kubeconfig and its cluster, the daemon and agent images, and that a container with only NET_ADMIN and /dev/net/tun can create a TUN device. Exits non-zero when a check fails.';
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --build --json',
  ];
  static override flags = {
    ...kubeFlags,
    build: Flags.boolean({
      description: 'Build missing or stale images so that every check can run.',
    }),
  };

  async run(): Promise<DoctorReport> {
    const { flags } = await this.parse(Doctor);
    const report = await runDoctor(
      DockerEngine.connect(),
      { kube: kubeSelection(flags), build: flags.build },
      this.progress(),
    );
    this.log(renderDoctor(report));
    if (!report.ok) process.exitCode = exitCodes.failed;
    return report;
  }
}
