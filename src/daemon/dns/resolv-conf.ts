import { open, type FileHandle } from 'node:fs/promises';
import { TpError, messageOf } from '../../lib/errors.js';

/** /etc/resolv.conf as glibc reads it (resolv.conf(5)), with what tp does not interpret kept. */
export interface ResolvConf {
  nameservers: string[];
  /** `search`, or `domain` as a one-entry search list; the last of them wins, as in glibc. */
  search: string[];
  ndots?: number;
  /** Every option but ndots, as written (`edns0`, `timeout:2`...). */
  options: string[];
  /** Lines with other keywords (`sortlist`), verbatim. */
  other: string[];
  /** The nameservers a file rewritten by tp had before: see `rewriteResolvConf`. */
  previousNameservers: string[];
}

const PREVIOUS = '#tp-previous-nameserver';

export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = {
    nameservers: [],
    search: [],
    options: [],
    other: [],
    previousNameservers: [],
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const [keyword, ...args] = line.split(/\s+/);
    if (keyword === PREVIOUS && args[0] !== undefined) conf.previousNameservers.push(args[0]);
    if (keyword === undefined || keyword === '' || /^[#;]/.test(keyword)) continue;
    if (keyword === 'nameserver') {
      if (args[0] !== undefined) conf.nameservers.push(args[0]);
    } else if (keyword === 'search') {
      conf.search = args;
    } else if (keyword === 'domain') {
      conf.search = args.slice(0, 1);
    } else if (keyword === 'options') {
      for (const option of args) setOption(conf, option);
    } else {
      conf.other.push(line);
    }
  }
  return conf;
}

function setOption(conf: ResolvConf, option: string): void {
  const [name = ''] = option.split(':');
  if (name === 'ndots') {
    const n = Number(option.slice('ndots:'.length));
    // glibc caps ndots at 15 and ignores a value it cannot read.
    if (Number.isInteger(n) && n >= 0) conf.ndots = Math.min(n, 15);
    return;
  }
  conf.options = conf.options.filter((o) => (o.split(':')[0] ?? '') !== name);
  conf.options.push(option);
}

export function renderResolvConf(conf: ResolvConf): string {
  const options = [...(conf.ndots === undefined ? [] : [`ndots:${conf.ndots}`]), ...conf.options];
  const lines = [
    ...conf.previousNameservers.map((ns) => `${PREVIOUS} ${ns}`),
    ...conf.nameservers.map((ns) => `nameserver ${ns}`),
    ...(conf.search.length > 0 ? [`search ${conf.search.join(' ')}`] : []),
    ...(options.length > 0 ? [`options ${options.join(' ')}`] : []),
    ...conf.other,
  ];
  return lines.map((l) => `${l}\n`).join('');
}

/**
 * The nameservers to forward non-cluster names to: those the file had before tp rewrote it,
 * so a daemon that restarts and reads its own rewritten file still finds them.
 */
export function upstreamNameservers(conf: ResolvConf): string[] {
  return conf.previousNameservers.length > 0 ? conf.previousNameservers : conf.nameservers;
}

export interface RewriteOptions {
  /** tp's DNS server, the only nameserver left: a second one would let names bypass it. */
  nameserver: string;
  /** The cluster's search domains, most specific first; the original ones follow. */
  search: readonly string[];
  ndots: number;
}

/**
 * Points the resolver at tp's DNS server. The previous nameservers are kept in comment lines
 * only, so rewriting an already rewritten file changes nothing.
 */
export function rewriteResolvConf(original: string, opts: RewriteOptions): string {
  const conf = parseResolvConf(original);
  const previous = upstreamNameservers(conf).filter((ns) => ns !== opts.nameserver);
  return renderResolvConf({
    ...conf,
    nameservers: [opts.nameserver],
    search: [...new Set([...opts.search, ...conf.search])],
    ndots: opts.ndots,
    previousNameservers: previous,
  });
}

/**
 * Replaces the file's content, keeping its inode. Docker bind-mounts this very file into every
 * container that joins the daemon's network namespace; a write-and-rename would leave them
 * reading the old inode.
 */
export async function writeInPlace(path: string, text: string): Promise<void> {
  let file: FileHandle | undefined;
  try {
    // r+ never creates a file: if it is missing, nothing is mounted from it either.
    file = await open(path, 'r+');
    await file.truncate(0);
    await file.writeFile(text, 'utf8');
  } catch (err) {
    throw new TpError('config', `cannot rewrite ${path}: ${messageOf(err)}`, {
      code: 'RESOLV_CONF_WRITE',
      fix: `Start the daemon container with a writable ${path} (no read-only root filesystem or mount on it).`,
      cause: err,
    });
  } finally {
    await file?.close();
  }
}
