/**
 * Volumes for replace and ingest (docs/engagements.md): each mount the agent reports is
 * copied, as a tar from the agent through the daemon, into a Docker volume labelled with the
 * session and the workload, and mounted at the same path in the --docker-run container.
 * `tp leave` and `tp quit` remove the volumes.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { byteProgress, formatBytes, type Progress } from '../cli/progress.js';
import type { AgentInfo, EngageMode } from '../contract/agent.js';
import type { DockerEngine } from '../docker/engine.js';
import { VolumeFiller, removeVolumes } from '../docker/volumes.js';
import { TpError, messageOf } from '../lib/errors.js';
import { LABEL_SESSION, LABEL_WORKLOAD, tpLabels } from '../lib/labels.js';
import { clientVersion } from '../lib/package-info.js';
import type { ControlClient } from '../session/control-client.js';
import { extractTo } from './host-copy.js';

/** `--mount`, with Telepresence's values: true (the default), false, or a host directory. */
export type MountOption = { copy: false } | { copy: true; hostDir?: string };

export function parseMountFlag(value: string | undefined, cwd = process.cwd()): MountOption {
  if (value === undefined || value === 'true') return { copy: true };
  if (value === 'false') return { copy: false };
  if (value === '') {
    throw new TpError('usage', '--mount needs true, false or a directory.', {
      code: 'MOUNT_FLAG',
      fix: 'Write --mount=false to skip volumes, or --mount <dir> to also copy them there.',
    });
  }
  const hostDir = resolve(cwd, value);
  const st = statSync(hostDir, { throwIfNoEntry: false });
  if (st !== undefined && !st.isDirectory()) {
    throw new TpError('usage', `--mount: ${hostDir} is not a directory.`, {
      code: 'MOUNT_NOT_A_DIRECTORY',
      fix: 'Name a directory (tp creates it when it does not exist).',
    });
  }
  return { copy: true, hostDir };
}

/** Where one mount of the pod goes in Docker. */
export interface PlannedMount {
  path: string;
  /** The Docker volume with the copy. */
  volume: string;
  readOnly: boolean;
}

export interface EngagedMount extends PlannedMount {
  /** Where `--mount <dir>` put the copy on this host. */
  hostPath?: string;
  /** Bytes copied (the tar's) and how long the copy took. */
  bytes: number;
  ms: number;
  /** Files the agent could not read, left out of the copy. */
  skipped: string[];
  /** Set when the mount is not in Docker, saying why. */
  notMounted?: string;
}

/** Docker volume names: letters, digits, `_.-`, starting with a letter or digit. */
function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
}

/**
 * One volume per mount, named after the session, the workload and the path (with a hash of
 * the path: /a-b and /a/b read the same once slugged). Read-only for ingest and where the pod
 * has the mount read-only (ConfigMaps, Secrets, tokens, readOnly mounts).
 */
export function planMounts(
  mounts: AgentInfo['mounts'],
  opts: { mode: EngageMode; session: string; workload: string },
): PlannedMount[] {
  const name = opts.workload.split('/').pop() ?? opts.workload;
  return mounts.map((m) => {
    const hash = createHash('sha256').update(m.path).digest('hex').slice(0, 6);
    const volume = `${opts.session}-${slug(name)}-${slug(m.path).slice(0, 48) || 'root'}-${hash}`;
    return {
      path: m.path,
      volume,
      readOnly: (opts.mode !== 'replace' && opts.mode !== 'intercept') || m.readOnly,
    };
  });
}

/** `docker run -v` values for the mounts that are in Docker. */
export function volumeFlags(mounts: readonly EngagedMount[]): string[] {
  return mounts
    .filter((m) => m.notMounted === undefined)
    .map((m) => `${m.volume}:${m.path}${m.readOnly ? ':ro' : ''}`);
}

export function volumeLabels(session: string, workload: string): Record<string, string> {
  return { [LABEL_SESSION]: session, [LABEL_WORKLOAD]: workload };
}

/**
 * Removes the copies of a workload's mounts; those a container still uses (one the user
 * started with them) stay until `tp quit`. Resolves to the volumes removed.
 */
export async function removeMountCopies(
  engine: DockerEngine,
  session: string,
  workload: string,
): Promise<string[]> {
  return (await removeVolumes(engine, volumeLabels(session, workload))).removed;
}

export interface CopyRequest {
  control: ControlClient;
  /** The daemon container: its image makes the helper containers. */
  daemon: string;
  session: string;
  /** `kind/name`, as the daemon knows the engagement. */
  workload: string;
  mode: EngageMode;
  mounts: AgentInfo['mounts'];
  hostDir?: string;
}

/** How often a copy's progress is redrawn: often enough to see it move, rarely in a CI log. */
const PROGRESS_EVERY_MS = 1000;

/**
 * Copies every mount, one after the other, through one helper container created while the
 * first tar is asked for; a mount that cannot be copied fails the engagement.
 */
export async function copyMounts(
  engine: DockerEngine,
  req: CopyRequest,
  progress: Progress,
): Promise<EngagedMount[]> {
  // Copies a crash left would otherwise be filled over, keeping files the pod no longer has.
  await removeMountCopies(engine, req.session, req.workload);
  const planned = planMounts(req.mounts, req);
  if (planned.length === 0) return [];
  const labels = tpLabels(clientVersion(), 'volume', volumeLabels(req.session, req.workload));
  const filler = VolumeFiller.create(engine, {
    volumes: planned.map((p) => p.volume),
    labels,
    imageOf: req.daemon,
  });
  // Awaited below; until then a failure must not be an unhandled rejection.
  filler.catch(() => undefined);
  const out: EngagedMount[] = [];
  try {
    for (const mount of planned) {
      const step = progress.step(`Copying ${mount.path}`);
      try {
        const copied = await copyOne(req, mount, filler, (detail) => {
          step.update(detail);
        });
        out.push(copied);
        step.succeed(summary(copied));
      } catch (err) {
        step.fail();
        throw new TpError(
          'unavailable',
          `Could not copy ${mount.path} of ${req.workload}: ${messageOf(err)}`,
          {
            code: 'MOUNT_COPY_FAILED',
            fix: 'Try again, or leave the volumes out with --mount=false.',
            cause: err,
          },
        );
      }
    }
  } finally {
    await (await filler.catch(() => undefined))?.remove();
  }
  // The volumes of mounts Docker cannot mount would only be clutter.
  const unused = out.filter((m) => m.notMounted !== undefined).map((m) => m.volume);
  if (unused.length > 0) await removeVolumes(engine, labels, unused);
  return out;
}

function summary(m: EngagedMount): string {
  if (m.notMounted !== undefined) return m.notMounted;
  const rate = m.ms > 0 ? `, ${formatBytes((m.bytes * 1000) / m.ms)}/s` : '';
  const skipped = m.skipped.length > 0 ? `; left out (unreadable): ${m.skipped.join(', ')}` : '';
  return `${formatBytes(m.bytes)}${rate}${m.readOnly ? ', read-only' : ''}${skipped}`;
}

async function copyOne(
  req: CopyRequest,
  planned: PlannedMount,
  filler: Promise<VolumeFiller>,
  update: (detail: string) => void,
): Promise<EngagedMount> {
  const start = Date.now();
  const answer = await req.control.stream('POST /v1/engagements/tar', {
    workload: req.workload,
    path: planned.path,
  });
  const { meta } = answer;
  let bytes = 0;
  let shown = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (Date.now() - shown >= PROGRESS_EVERY_MS) {
        shown = Date.now();
        update(byteProgress(bytes, meta.size));
      }
      done(null, chunk);
    },
  });
  answer.body.once('error', (err) => counter.destroy(err));
  answer.body.pipe(counter);
  const hostPath = req.hostDir === undefined ? undefined : join(req.hostDir, planned.path);
  const result = (extra: Partial<EngagedMount>): EngagedMount => ({
    ...planned,
    ...(hostPath === undefined ? {} : { hostPath }),
    bytes,
    ms: Date.now() - start,
    skipped: meta.skipped,
    ...extra,
  });

  if (meta.root?.file === true) {
    // A subPath mount of one file: a Docker volume mounts folders only (a volume's subpath
    // needs Engine API 1.45), so the file reaches the host directory alone, if one is given.
    if (hostPath === undefined) {
      counter.resume();
      await finished(counter);
    } else {
      await extractTo(counter, dirname(hostPath));
    }
    return result({ notMounted: 'one file (a subPath mount): not in Docker volumes' });
  }
  let helper: VolumeFiller;
  try {
    helper = await filler;
  } catch (err) {
    answer.body.destroy();
    throw err;
  }
  const { root } = meta;
  await helper.fill(
    planned.volume,
    counter,
    root === undefined ? undefined : { mode: root.mode, uid: root.uid, gid: root.gid },
  );
  const copied = result({});
  if (hostPath !== undefined)
    await extractTo(await helper.read(planned.volume), hostPath, planned.volume);
  return copied;
}
