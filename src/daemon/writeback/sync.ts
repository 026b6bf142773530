/**
 * The `sync` role of the daemon image (docs/engagements.md, "Write-back"): in a helper that
 * mounts the Docker volumes holding a replace's writable mounts and joins the daemon's
 * network namespace, it sends what the local container writes there to the pod, through the
 * daemon's control API, which hands it to the agent of each pod.
 *
 * A change is noticed by inotify (a recursive fs.watch) and by a walk every `pollMs` for
 * what inotify misses; each mount is walked whole and compared with what was last sent.
 */
import { constants, watch, type FSWatcher } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { pack as tarPack, type Pack } from 'tar-stream';
import { buffer } from 'node:stream/consumers';
import {
  MAX_CONTROL_UPLOAD,
  STREAM_META_HEADER,
  type WriteRequest,
  type WriteResult,
} from '../../contract/control.js';
import { diff, isEmpty, scan, type Changes, type Entry, type Snapshot } from './scan.js';

export interface SyncMount {
  /** The mount's path in the pod. */
  path: string;
  /** Where the helper has the local copy. */
  dir: string;
}

export interface SyncConfig {
  workload: string;
  mounts: SyncMount[];
  /** The daemon's control API, on the loopback of the namespace the helper joins. */
  controlPort: number;
}

export interface SyncOptions extends SyncConfig {
  secret: string;
  pollMs?: number;
  /** How soon after an inotify event the walk runs: writes come in bursts. */
  settleMs?: number;
  log?: (o: object) => void;
}

export interface Syncer {
  /** Sends what is still unsent, then stops watching. */
  stop(): Promise<void>;
}

export function parseSyncConfig(json: string): SyncConfig {
  const o = JSON.parse(json) as Partial<SyncConfig>;
  if (typeof o.workload !== 'string' || typeof o.controlPort !== 'number')
    throw new Error('the sync config needs workload and controlPort');
  if (!Array.isArray(o.mounts) || o.mounts.some((m) => !m.path.startsWith('/') || m.dir === ''))
    throw new Error('the sync config needs mounts of { path, dir }');
  return { workload: o.workload, mounts: o.mounts, controlPort: o.controlPort };
}

/** Entries in sends of at most half the daemon's limit each; a larger file goes alone. */
export function batches(send: readonly string[], sizeOf: (rel: string) => number): string[][] {
  const limit = MAX_CONTROL_UPLOAD / 2;
  const out: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const rel of send) {
    const n = sizeOf(rel);
    if (current.length > 0 && size + n > limit) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(rel);
    size += n;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** A tar of the changed entries, in the order `diff` gives (parents first). */
export async function packChanges(dir: string, send: readonly string[]): Promise<Buffer> {
  const pack = tarPack();
  const out = buffer(pack);
  for (const rel of send) await addEntry(pack, dir, rel);
  pack.finalize();
  return out;
}

async function addEntry(pack: Pack, dir: string, rel: string): Promise<void> {
  const path = join(dir, rel);
  // Not through a link: the walk saw a link, and the pod gets the link.
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (file === undefined) {
    // A link, or gone since the walk: the next walk sees which.
    const st = await lstat(path).catch(() => undefined);
    if (st?.isSymbolicLink() === true) {
      const target = await readlink(path);
      await entry(pack, { name: rel, type: 'symlink', linkname: target, mode: 0o777 });
    }
    return;
  }
  try {
    const st = await file.stat();
    const meta = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isDirectory()) {
      await entry(pack, { ...meta, type: 'directory' });
      return;
    }
    if (!st.isFile()) return;
    // Only the bytes there when opened: a file still growing makes a valid entry, and its
    // next size is a change the next walk sends.
    const data = Buffer.alloc(st.size);
    const { bytesRead } = await file.read(data, 0, st.size, 0);
    await entry(pack, { ...meta, type: 'file', size: bytesRead }, data.subarray(0, bytesRead));
  } finally {
    await file.close();
  }
}

function entry(
  pack: Pack,
  header: Parameters<Pack['entry']>[0],
  body: Buffer = Buffer.alloc(0),
): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, body, (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
}

function upload(opts: SyncOptions, meta: WriteRequest, tar: Buffer): Promise<WriteResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: opts.controlPort,
        method: 'POST',
        path: '/v1/engagements/write',
        headers: {
          authorization: `Bearer ${opts.secret}`,
          'content-type': 'application/x-tar',
          'content-length': tar.length,
          [STREAM_META_HEADER]: encodeURIComponent(JSON.stringify(meta)),
        },
        timeout: 120_000,
      },
      (res) => {
        buffer(res).then((body) => {
          if (res.statusCode === 200) resolve(JSON.parse(body.toString('utf8')) as WriteResult);
          else reject(new Error(`HTTP ${res.statusCode ?? 0}: ${body.toString('utf8')}`));
        }, reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error('the daemon did not answer')));
    req.once('error', reject);
    req.end(tar);
  });
}

class MountSync {
  private sent: Snapshot | undefined;

  constructor(
    private readonly opts: SyncOptions,
    private readonly mount: SyncMount,
  ) {}

  async baseline(): Promise<void> {
    this.sent = await scan(this.mount.dir);
  }

  /** Sends what changed since the last send; false when the send failed (kept for later). */
  async flush(): Promise<boolean> {
    const now = await scan(this.mount.dir);
    const changes: Changes = diff(this.sent ?? new Map<string, Entry>(), now);
    if (isEmpty(changes)) return true;
    const start = Date.now();
    try {
      let bytes = 0;
      let pods: string[] = [];
      const sends = batches(changes.send, (rel) => now.get(rel)?.size ?? 0);
      for (const [i, send] of (sends.length === 0 ? [[]] : sends).entries()) {
        const tar = await packChanges(this.mount.dir, send);
        const deletes = i === 0 ? changes.deletes : [];
        const meta = { workload: this.opts.workload, path: this.mount.path, deletes };
        pods = (await upload(this.opts, meta, tar)).pods;
        bytes += tar.length;
      }
      this.sent = now;
      this.opts.log?.({
        msg: 'written back',
        path: this.mount.path,
        sent: changes.send.length,
        deleted: changes.deletes.length,
        bytes,
        pods,
        ms: Date.now() - start,
      });
      return true;
    } catch (err) {
      this.opts.log?.({ msg: 'write-back failed', path: this.mount.path, error: String(err) });
      return false;
    }
  }
}

export async function startSync(opts: SyncOptions): Promise<Syncer> {
  const pollMs = opts.pollMs ?? 1000;
  const settleMs = opts.settleMs ?? 50;
  const mounts = opts.mounts.map((m) => new MountSync(opts, m));
  // What is there when the helper starts is the copy of the pod's contents.
  await Promise.all(mounts.map((m) => m.baseline()));

  let running: Promise<void> | undefined;
  // Counts triggers: one during a pass earns one more pass after it.
  let triggers = 0;
  let stopped = false;
  const flushAll = async (): Promise<void> => {
    await Promise.all(mounts.map((m) => m.flush()));
  };
  // One pass at a time; a trigger during a pass earns one more pass after it.
  const kick = (): Promise<void> => {
    if (running !== undefined) {
      triggers += 1;
      return running;
    }
    running = (async () => {
      let seen;
      do {
        seen = triggers;
        await flushAll();
      } while (triggers !== seen && !stopped);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  let settle: NodeJS.Timeout | undefined;
  const soon = (): void => {
    if (stopped) return;
    clearTimeout(settle);
    settle = setTimeout(() => void kick(), settleMs);
  };
  const watchers: FSWatcher[] = [];
  for (const m of opts.mounts) {
    try {
      const w = watch(m.dir, { recursive: true }, soon);
      w.on('error', () => undefined);
      watchers.push(w);
    } catch (err) {
      opts.log?.({ msg: 'no inotify: walking only', dir: m.dir, error: String(err) });
    }
  }
  const poll = setInterval(() => void kick(), pollMs);
  opts.log?.({ msg: 'syncing', workload: opts.workload, mounts: opts.mounts.map((m) => m.path) });

  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        clearInterval(poll);
        clearTimeout(settle);
        for (const w of watchers) w.close();
        await running;
        await flushAll();
      })()),
  };
}
