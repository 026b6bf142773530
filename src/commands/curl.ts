import { TpCommand } from '../cli/base-command.js';
import { DockerEngine } from '../docker/engine.js';
import { curlInSession } from '../session/curl.js';

export default class Curl extends TpCommand {
  static override summary =
    "Run curl inside the session's network namespace; curl's exit code is tp's.";
  static override description =
    "Every argument goes to curl (including --json, which is curl's own flag here). To pick a session when there are several, set TP_SESSION.";
  static override examples = [
    '<%= config.bin %> curl -sS http://echo.samples/',
    '<%= config.bin %> curl -v http://198.18.128.20:8080/',
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
