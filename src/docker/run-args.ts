/**
 * The arguments a user gives `--docker-run --` as `docker run` would read them: tp runs the
 * real `docker run` with them, so every flag behaves as it does with Docker itself, and adds
 * the session's network, the engagement's env and volumes. For that it must know where the
 * image is, and which flags clash with sharing the daemon's network namespace.
 */
import { TpError } from '../lib/errors.js';
import { parsePublish } from './publish.js';

/** docker run's flags that take a value (Docker 28, `docker run --help`; --net and --net-alias are its hidden aliases). */
const withValue = new Set([
  ...'add-host attach blkio-weight blkio-weight-device cap-add cap-drop cgroup-parent cgroupns cidfile cpu-period cpu-quota cpu-rt-period cpu-rt-runtime cpu-shares cpus cpuset-cpus cpuset-mems detach-keys device device-cgroup-rule device-read-bps device-read-iops device-write-bps device-write-iops dns dns-option dns-search domainname entrypoint env env-file expose gpus group-add health-cmd health-interval health-retries health-start-interval health-start-period health-timeout hostname ip ip6 ipc isolation kernel-memory label label-file link link-local-ip log-driver log-opt mac-address memory memory-reservation memory-swap memory-swappiness mount name net net-alias network network-alias oom-score-adj pid pids-limit platform publish pull restart runtime security-opt shm-size stop-signal stop-timeout storage-opt sysctl tmpfs ulimit user userns uts volume volume-driver volumes-from workdir'
    .split(' ')
    .map((f) => `--${f}`),
  ...['-a', '-c', '-e', '-h', '-l', '-m', '-p', '-u', '-v', '-w'],
]);
const booleans = new Set([
  ...'detach disable-content-trust help init interactive no-healthcheck oom-kill-disable privileged publish-all quiet read-only rm sig-proxy tty use-api-socket'
    .split(' ')
    .map((f) => `--${f}`),
  ...['-d', '-i', '-P', '-q', '-t'],
]);
const longOf: Record<string, string> = {
  '-d': '--detach',
  '-h': '--hostname',
  '-p': '--publish',
  '-P': '--publish-all',
  '-i': '--interactive',
  '-t': '--tty',
};

/** Flags that cannot go with a network namespace shared with the daemon, and why. */
const clashes: Record<string, string> = {
  '--network': 'tp runs the container in the session daemon’s network namespace',
  '--net': 'tp runs the container in the session daemon’s network namespace',
  '--network-alias':
    'the container shares the daemon’s network namespace, which has no aliases of its own',
  '--net-alias':
    'the container shares the daemon’s network namespace, which has no aliases of its own',
  '--hostname': 'the container shares the daemon’s network namespace, and so its hostname',
  '--dns': 'the namespace’s resolver is tp’s, which answers cluster names first',
  '--dns-search': 'the namespace’s resolver is tp’s, which answers cluster names first',
  '--dns-option': 'the namespace’s resolver is tp’s, which answers cluster names first',
  '--mac-address': 'the container shares the daemon’s network interfaces',
  '--ip': 'the container shares the daemon’s network interfaces',
  '--ip6': 'the container shares the daemon’s network interfaces',
  '--link': 'the container reaches other containers by name on the session network instead',
  '--publish-all': 'tp publishes only the ports given with -p',
  '--detach': 'tp waits for the container: the engagement ends when it exits',
};

export interface RunArgs {
  /** Every flag as the user gave it, except -p, which tp publishes through a helper. */
  flags: string[];
  image: string;
  command: string[];
  /** The -p/--publish values, as `docker run` takes them. */
  publish: string[];
  name?: string;
  /** -t: the container gets a terminal (and tp's own stdin must then be one). */
  tty: boolean;
  rm: boolean;
}

const usage = (message: string, fix: string): TpError =>
  new TpError('usage', message, { code: 'DOCKER_RUN_ARGS', fix });

export function parseRunArgs(args: readonly string[]): RunArgs {
  const out: RunArgs = { flags: [], image: '', command: [], publish: [], tty: false, rm: false };
  const take = (flag: string, value: string | undefined, raw: string[]): void => {
    const long = longOf[flag] ?? flag;
    const clash = clashes[long];
    if (clash !== undefined && !(booleans.has(long) && value === 'false')) {
      throw usage(`--docker-run: ${raw.join(' ')} cannot be used: ${clash}.`, `Leave out ${long}.`);
    }
    if (long === '--publish') {
      // Read now, so that a value Docker would refuse fails before the workload is touched.
      parsePublish(value ?? '');
      out.publish.push(value ?? '');
      return;
    }
    if (long === '--name' && value !== undefined) out.name = value;
    if (long === '--tty') out.tty = value !== 'false';
    if (long === '--rm') out.rm = value !== 'false';
    out.flags.push(...raw);
  };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      i += 1;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const flag = eq < 0 ? arg : arg.slice(0, eq);
      if (eq >= 0) {
        // A flag this table lacks (a newer Docker's) is fine in this form: its value is plain.
        take(flag, arg.slice(eq + 1), [arg]);
      } else if (withValue.has(flag)) {
        const value = args[++i];
        if (value === undefined)
          throw usage(`--docker-run: ${flag} needs a value.`, `Give ${flag} its value.`);
        take(flag, value, [arg, value]);
      } else {
        known(flag);
        take(flag, undefined, [arg]);
      }
      continue;
    }
    // Short flags combine (`-it`); the first that takes a value takes the rest, or the next arg.
    for (let j = 1; j < arg.length; j++) {
      const flag = `-${arg[j] ?? ''}`;
      if (withValue.has(flag)) {
        const rest = arg.slice(j + 1).replace(/^=/, '');
        const value = rest !== '' ? rest : args[++i];
        if (value === undefined)
          throw usage(`--docker-run: ${flag} needs a value.`, `Give ${flag} its value.`);
        take(flag, value, [flag, value]);
        break;
      }
      known(flag);
      take(flag, undefined, [flag]);
    }
  }
  const image = args[i];
  if (image === undefined) {
    throw usage(
      '--docker-run: no image to run.',
      'Put the image after the docker run flags: --docker-run -- [flags] IMAGE [COMMAND]',
    );
  }
  out.image = image;
  out.command = args.slice(i + 1);
  return out;
}

function known(flag: string): void {
  if (!booleans.has(flag) && !withValue.has(flag)) {
    throw usage(
      `--docker-run: tp does not know the docker run flag ${flag}.`,
      `Check its spelling; a newer Docker's flag can be written ${flag}=VALUE.`,
    );
  }
}
