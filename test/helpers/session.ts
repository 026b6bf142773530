import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { CommandResult } from '../../src/docker/engine.js';
import { tpLabels } from '../../src/lib/labels.js';
import { clientVersion } from '../../src/lib/package-info.js';
import type { ExecutionContext } from 'ava';
import { tp, tpBackground, type BackgroundTp, type CliResult } from './cli.js';
import { engine } from './docker.js';

/** What the e2e tier needs from the environment: the lab's registry for the agent image. */
export const labEnv = { TP_REGISTRY: process.env.TP_REGISTRY ?? '127.0.0.1:5000' };

export function sessionName(prefix = 'e2e'): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export function tpLab(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return tp(args, { ...labEnv, ...env });
}

/** tpBackground with the lab's settings. */
export function tpLabBackground(t: ExecutionContext, args: string[]): BackgroundTp {
  return tpBackground(t, args, labEnv);
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names what the JSON is
export function json<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.exitCode}): ${r.stdout}\n${r.stderr}`);
  }
}

const flowClient = readFileSync(new URL('../fixtures/flow-client.cjs', import.meta.url), 'utf8');

/** Runs containers joined to a session's daemon, labelled so a failed test leaves nothing. */
export class Joined {
  constructor(
    readonly daemon: string,
    readonly daemonImage: string,
  ) {}

  run(
    image: string,
    cmd: string[],
    entrypoint?: string[],
    timeoutMs = 120_000,
  ): Promise<CommandResult> {
    return engine.runToCompletion(
      {
        image,
        cmd,
        labels: tpLabels(clientVersion(), 'test'),
        networkMode: `container:${this.daemon}`,
        ...(entrypoint === undefined ? {} : { entrypoint }),
      },
      timeoutMs,
    );
  }

  /** test/fixtures/flow-client.cjs in the daemon image (which has Node), joined. */
  async flows(args: string[]): Promise<Record<string, unknown>> {
    const r = await this.run(this.daemonImage, ['-e', flowClient, ...args], ['node']);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`flow client (exit ${r.exitCode}): ${r.stdout} ${r.stderr}`);
    }
  }
}
