/**
 * The in-cluster program: one image, two roles. `manager` dials destinations for daemons;
 * `agent` is the sidecar of an engaged pod. Both report their version and stay up until
 * stopped; their work arrives with the issues that need it.
 */
import { clientVersion } from '../src/lib/package-info.js';

const roles = ['manager', 'agent'] as const;
type Role = (typeof roles)[number];

const role = (process.argv[2] ?? 'manager') as Role;
if (!roles.includes(role)) {
  console.error(`unknown role ${role}: use ${roles.join(' or ')}`);
  process.exitCode = 2;
} else {
  console.log(JSON.stringify({ msg: 'tp agent started', role, version: clientVersion() }));
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const stop = (signal: string): void => {
    console.log(JSON.stringify({ msg: 'tp agent stopping', role, signal }));
    clearInterval(keepAlive);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
