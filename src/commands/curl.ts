import { TpCommand } from '../cli/base-command.js';
import { DockerEngine } from '../docker/engine.js';
import { curlInSession } from '../session/curl.js';

export default class Curl extends TpCommand {
  static override summary =
    "Run curl inside the session's network namespace; curl's exit code is tp's.";
  static override description =
    "Every argument goes to curl (--json too, which is curl's own flag here), so tp takes no flag of its own: pick the session with TP_SESSION=<session>.";
  static override examples = [
    '<%= config.bin %> curl -sS http://echo.samples/',
    '<%= config.bin %> curl -v http://198.18.128.20:8080/',
    'TP_SESSION=tp-tp-lab-samples <%= config.bin %> curl -sS http://echo/',
  ];
  static override strict = false;
  static override enableJsonFlag = false;

  async run(): Promise<void> {
    const env = process.env.TP_SESSION;
    const code = await curlInSession(
      DockerEngine.connect(),
      env === undefined || env === '' ? undefined : env,
      this.argv,
      process.stdout,
      process.stderr,
    );
    process.exitCode = code;
  }
}
