/**
 * The program inside the daemon container. `probe` checks the container's network
 * capabilities and exits; with no argument it reports its versions and stays up until
 * stopped. The session, control API and flow router arrive with `tp connect`.
 */
import { clientVersion } from '../lib/package-info.js';
import { loadNetstack } from '../netstack/library.js';

const libraryPath = process.env.TP_NETSTACK_LIB;
const netstack = loadNetstack(
  libraryPath === undefined || libraryPath === '' ? undefined : libraryPath,
);
const mode = process.argv[2] ?? 'run';

if (mode === 'probe') {
  const result = netstack.probeTun(process.argv[3] ?? 'tpprobe0');
  console.log(JSON.stringify(result));
  process.exitCode = result.ok ? 0 : 1;
} else if (mode === 'run') {
  console.log(
    JSON.stringify({
      msg: 'tp daemon started',
      version: clientVersion(),
      netstack: netstack.version(),
    }),
  );
  // Nothing else holds the event loop open yet; this timer is what keeps the daemon up.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const stop = (signal: string): void => {
    console.log(JSON.stringify({ msg: 'tp daemon stopping', signal }));
    clearInterval(keepAlive);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  console.error(`unknown mode ${mode}: use "run" or "probe [name]"`);
  process.exitCode = 2;
}
