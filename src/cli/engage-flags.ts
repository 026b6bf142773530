import { Args, Flags } from '@oclif/core';
import { parseMountFlag, type MountOption } from '../engage/volumes.js';
import { DockerEngine } from '../docker/engine.js';
import { engage, type EngageOptions, type EngageResult } from '../engage/engage.js';
import { TpError } from '../lib/errors.js';
import { renderEngagement } from '../render/engage.js';
import { settingsFromEnv } from '../session/config.js';
import type { Progress } from './progress.js';

/** The workload argument of every engagement command. */
export const workloadArg = {
  workload: Args.string({
    description: 'The workload: a name, or kind/name (deploy/echo, statefulset/store).',
    required: true,
  }),
};

/** The session an engagement belongs to: --use (Telepresence's flag for it) or TP_SESSION. */
export const useFlag = {
  use: Flags.string({
    description: 'The session (its daemon container name); default: the only session there is.',
    env: 'TP_SESSION',
  }),
};

/** Flags replace and ingest share, with Telepresence's names. */
export const engageFlags = {
  ...useFlag,
  container: Flags.string({
    description: 'The container to engage; needed only when the pod has several.',
  }),
  'env-file': Flags.string({
    description:
      "Write the container's environment to this file, in Docker's env-file syntax (mode 0600).",
  }),
  'env-json': Flags.string({
    description: "Write the container's environment to this file as JSON (mode 0600).",
  }),
  'docker-run': Flags.boolean({
    description:
      'Run `docker run` with the arguments after `--` in the session, with the env; the engagement ends when the container exits, and its exit code is tp’s.',
  }),
  mount: Flags.string({
    description:
      'true: copy the container’s volumes into Docker volumes, mounted at the same paths by --docker-run; false: leave them out; a directory: also copy them there, under their paths, for tools outside Docker.',
    default: 'true',
  }),
};

/** intercept and wiretap: the Service port and what of its traffic, with Telepresence's names. */
export const tapFlags = {
  port: Flags.string({
    description:
      'local[:remote]: the Service port remote (its number or name, or the container port it leads to) goes to local in the session; needed only when several ports reach the container.',
    multiple: true,
  }),
  service: Flags.string({
    description: 'The Service whose port to take; needed only when several select the workload.',
  }),
  'http-header': Flags.string({
    description:
      'name=value: take only HTTP requests with this header (repeatable; all must match).',
    multiple: true,
  }),
  'http-path-prefix': Flags.string({
    description: 'Take only HTTP requests whose path starts so (repeatable; any may match).',
    multiple: true,
  }),
};

/** The parsed flags replace and ingest share, as engage() takes them. */
export interface ParsedEngage {
  use?: string | undefined;
  container?: string | undefined;
  'env-file'?: string | undefined;
  'env-json'?: string | undefined;
  'docker-run': boolean;
  mount?: string | undefined;
  service?: string | undefined;
  'http-header'?: string[] | undefined;
  'http-path-prefix'?: string[] | undefined;
}

/**
 * engage()'s optional fields from the flags. docker run's arguments are what follows the first
 * `--` of the raw command line: oclif's parsed argv does not keep their order.
 */
export function engageOptionals(
  flags: ParsedEngage,
  raw: readonly string[],
): {
  session?: string;
  container?: string;
  envFile?: string;
  envJson?: string;
  dockerRun?: string[];
  mount: MountOption;
  service?: string;
  httpHeaders?: string[];
  httpPathPrefixes?: string[];
} {
  return {
    ...(flags.service === undefined ? {} : { service: flags.service }),
    ...(flags['http-header'] === undefined ? {} : { httpHeaders: flags['http-header'] }),
    ...(flags['http-path-prefix'] === undefined
      ? {}
      : { httpPathPrefixes: flags['http-path-prefix'] }),
    ...(flags.use === undefined ? {} : { session: flags.use }),
    ...(flags.container === undefined ? {} : { container: flags.container }),
    ...(flags['env-file'] === undefined ? {} : { envFile: flags['env-file'] }),
    ...(flags['env-json'] === undefined ? {} : { envJson: flags['env-json'] }),
    ...(flags['docker-run'] ? { dockerRun: dockerRunArgs(raw) } : {}),
    mount: parseMountFlag(flags.mount),
  };
}

function dockerRunArgs(raw: readonly string[]): string[] {
  const at = raw.indexOf('--');
  if (at < 0) {
    throw new TpError('usage', '--docker-run needs the docker run arguments after `--`.', {
      code: 'DOCKER_RUN_ARGS',
      fix: 'Write them after a `--`: tp replace echo --docker-run -- [docker run flags] IMAGE [COMMAND]',
    });
  }
  return raw.slice(at + 1);
}

/**
 * What replace and ingest do once their flags are parsed: engage, show the engagement (on
 * stderr with --docker-run, whose container owns stdout), and take the container's exit code.
 */
export async function runEngagement(
  out: { log: (text: string) => void; logToStderr: (text: string) => void; progress: Progress },
  mode: EngageOptions['mode'],
  workload: string,
  ports: string[],
  flags: ParsedEngage,
  raw: readonly string[],
): Promise<EngageResult> {
  const opts = engageOptionals(flags, raw);
  const result = await engage(
    DockerEngine.connect(),
    { mode, workload, ports, settings: settingsFromEnv(), ...opts },
    out.progress,
    (active) => {
      if (opts.dockerRun !== undefined) out.logToStderr(renderEngagement(active));
    },
  );
  if (opts.dockerRun === undefined) out.log(renderEngagement(result));
  if (result.exitCode !== undefined) process.exitCode = result.exitCode;
  return result;
}
