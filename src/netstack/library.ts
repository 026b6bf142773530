import koffi, { type LibraryHandle } from 'koffi';
import { TpError, messageOf } from '../lib/errors.js';

/** Where containers/daemon.Dockerfile installs the Go library. */
export const defaultLibraryPath = '/usr/local/lib/tp/libtpnetstack.so';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

/**
 * The Go netstack library, bound with koffi. Calls that return text write into a buffer
 * owned by JavaScript, so no Go memory crosses the boundary and nothing needs freeing.
 */
export interface NetstackLibrary {
  version(): string;
  /** Creates, raises and removes a TUN device: what the daemon needs NET_ADMIN for. */
  probeTun(name: string): ProbeResult;
}

const outLen = 512;

export function loadNetstack(path: string = defaultLibraryPath): NetstackLibrary {
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (err) {
    throw new TpError(
      'config',
      `The netstack library cannot be loaded from ${path}: ${messageOf(err)}`,
      {
        code: 'NETSTACK_LOAD',
        fix: 'Rebuild the daemon image (`tp doctor` shows whether it is current).',
        cause: err,
      },
    );
  }
  const versionFn = lib.func('int TpNetstackVersion(_Out_ char *out, int n)');
  const probeFn = lib.func('int TpProbeTun(const char *name, _Out_ char *out, int n)');
  return {
    version: () => {
      const out = Buffer.alloc(outLen);
      versionFn(out, outLen);
      return cString(out);
    },
    probeTun: (name) => {
      const out = Buffer.alloc(outLen);
      const rc = probeFn(name, out, outLen) as number;
      return { ok: rc === 0, message: cString(out) };
    },
  };
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}
