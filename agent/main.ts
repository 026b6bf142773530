/**
 * The in-cluster program: one image, two roles. `manager` dials destinations for daemons;
 * `agent` is the sidecar of an engaged pod (its work arrives with engagements).
 */
import { clientVersion } from '../src/lib/package-info.js';
import { startManager } from './manager.js';

const roles = ['manager', 'agent'] as const;
type Role = (typeof roles)[number];

const log = (o: object): void => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...o }));
};
const role = (process.argv[2] ?? 'manager') as Role;
if (!roles.includes(role)) {
  console.error(`unknown role ${role}: use ${roles.join(' or ')}`);
  process.exitCode = 2;
} else {
  log({ msg: 'tp agent started', role, version: clientVersion() });
  let stop: () => Promise<void> = () => Promise.resolve();
  if (role === 'manager') {
    const manager = await startManager({ port: Number(process.env.TP_MANAGER_PORT ?? 8181), log });
    stop = () => manager.stop();
  } else {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    stop = () => {
      clearInterval(keepAlive);
      return Promise.resolve();
    };
  }
  const onSignal = (signal: string): void => {
    log({ msg: 'tp agent stopping', role, signal });
    void stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
