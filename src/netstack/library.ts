import koffi, { type LibraryHandle } from 'koffi';
import { TpError, messageOf } from '../lib/errors.js';

/** Where containers/daemon.Dockerfile installs the Go library. */
export const defaultLibraryPath = '/usr/local/lib/tp/libtpnetstack.so';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export interface StackConfig {
  tunName: string;
  mtu: number;
  /** An address for the TUN device itself, e.g. `198.18.254.1/32`; optional. */
  address?: string;
  /** CIDRs routed into the TUN at start. */
  routes: string[];
  /** The unix socket the stack hands each flow to (see FlowServer). */
  socketPath: string;
  udpIdleTimeoutMs: number;
}

export interface StackStats {
  flowsOpen: number;
  tcpFlows: number;
  udpFlows: number;
  flowsTotal: number;
  bytesToNode: number;
  bytesFromNode: number;
  refused: number;
  unreachable: number;
  drops: number;
  icmpEchoReplies: number;
  routes: string[];
  lastError: string;
}

/**
 * The Go netstack library, bound with koffi. Control only: flows never cross FFI, they
 * arrive on a unix socket. Calls that return text write into a buffer JavaScript owns, so
 * no Go memory crosses the boundary and nothing needs freeing.
 */
export interface NetstackLibrary {
  version(): string;
  /** Creates, raises and removes a TUN device: what the daemon needs NET_ADMIN for. */
  probeTun(name: string): ProbeResult;
  start(config: StackConfig): number;
  addRoute(handle: number, cidr: string): void;
  removeRoute(handle: number, cidr: string): void;
  stats(handle: number): StackStats;
  /**
   * Resets one flow by the `flowId` of its header: a TCP client gets a RST (`ECONNRESET`, not
   * the EOF that closing the flow's socket means), a UDP flow is closed. False if no such flow
   * is open (unknown, already reset or ended); throws for an unknown handle, and a RangeError
   * for an id that is not a u64.
   */
  resetFlow(handle: number, flowId: bigint): boolean;
  stop(handle: number): void;
}

const maxFlowId = (1n << 64n) - 1n;

const outLen = 4096;

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
  // Bound on first use, so that a library without a symbol fails the call that needs it,
  // with its name, rather than the whole load.
  type Fn = (...args: unknown[]) => unknown;
  const bind = (decl: string): Fn => {
    let fn: Fn | undefined;
    return (...args) => {
      fn ??= lib.func(decl) as Fn;
      return fn(...args);
    };
  };
  const versionFn = bind('int TpNetstackVersion(_Out_ char *out, int n)');
  const probeFn = bind('int TpProbeTun(const char *name, _Out_ char *out, int n)');
  const startFn = bind('long long TpStart(const char *cfg, _Out_ char *err, int n)');
  const addFn = bind('int TpAddRoute(long long h, const char *cidr, _Out_ char *err, int n)');
  const removeFn = bind('int TpRemoveRoute(long long h, const char *cidr, _Out_ char *err, int n)');
  const statsFn = bind('int TpStats(long long h, _Out_ char *out, int n)');
  const resetFn = bind('int TpResetFlow(long long h, uint64_t flowId)');
  const stopFn = bind('int TpStop(long long h)');

  /** Runs a call that reports failure as a negative return and a message in its buffer. */
  const call = (what: string, fn: (out: Buffer) => number): number => {
    const out = Buffer.alloc(outLen);
    const rc = fn(out);
    if (rc < 0) {
      throw new TpError('unavailable', `The netstack could not ${what}: ${cString(out)}`, {
        code: 'NETSTACK_FAILED',
        fix: 'Check that the daemon runs with --cap-add NET_ADMIN and --device /dev/net/tun (`tp doctor`).',
      });
    }
    return rc;
  };

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
    start: (config) => call('start', (out) => Number(startFn(JSON.stringify(config), out, outLen))),
    addRoute: (h, cidr) => {
      call(`route ${cidr}`, (out) => addFn(h, cidr, out, outLen) as number);
    },
    removeRoute: (h, cidr) => {
      call(`remove the route ${cidr}`, (out) => removeFn(h, cidr, out, outLen) as number);
    },
    stats: (h) => {
      let out = Buffer.alloc(outLen);
      let rc = statsFn(h, out, out.length) as number;
      // A positive answer is the size the JSON needs: many routes can outgrow the buffer.
      if (rc > 0) {
        out = Buffer.alloc(rc + 1);
        rc = statsFn(h, out, out.length) as number;
      }
      if (rc !== 0) throw new Error(`no netstack with handle ${h}`);
      return JSON.parse(cString(out)) as StackStats;
    },
    resetFlow: (h, flowId) => {
      // koffi takes a BigInt for a 64-bit parameter but turns one out of range into an
      // unspecified value: a wrong id must not reset some other flow.
      if (flowId < 0n || flowId > maxFlowId) throw new RangeError(`flow id ${flowId} is not a u64`);
      const rc = resetFn(h, flowId) as number;
      if (rc < 0) throw new Error(`no netstack with handle ${h}`);
      return rc === 0;
    },
    stop: (h) => {
      stopFn(h);
    },
  };
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}
