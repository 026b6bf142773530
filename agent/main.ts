/**
 * The in-cluster program: one image, three roles. `manager` dials destinations for daemons and
 * restores the engagements of sessions that stopped sending heartbeats;
 * `agent <config JSON>` stands in for (replace) or beside (ingest) an engaged container;
 * `probe [port]` is an exec probe of the agent's health port.
 */
import { AGENT_HEALTH_PORT } from '../src/contract/agent.js';
import { inClusterWorkloads } from '../src/k8s/in-cluster.js';
import { DEFAULT_MANAGER_NAMESPACE } from '../src/lib/k8s-keys.js';
import { clientVersion } from '../src/lib/package-info.js';
import { parseAgentConfig } from '../src/tunnel/agent-protocol.js';
import { startAgent } from './agent.js';
import { probeHealth } from './health.js';
import { startManager } from './manager.js';
import { startReaper } from './reaper.js';

const roles = ['manager', 'agent', 'probe'] as const;
type Role = (typeof roles)[number];

const log = (o: object): void => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...o }));
};

async function run(role: Role, args: string[]): Promise<(() => Promise<void>) | undefined> {
  if (role === 'probe') {
    // Quiet: an exec probe's output lands in the pod's events on every failure.
    process.exitCode = (await probeHealth(Number(args[0] ?? AGENT_HEALTH_PORT))) ? 0 : 1;
    return undefined;
  }
  log({ msg: 'tp agent started', role, version: clientVersion() });
  if (role === 'manager') {
    const reaper = startReaper({
      namespace: process.env.TP_POD_NAMESPACE ?? DEFAULT_MANAGER_NAMESPACE,
      api: () => inClusterWorkloads(),
      log,
    });
    const manager = await startManager({
      port: Number(process.env.TP_MANAGER_PORT ?? 8181),
      log,
      onHeartbeat: (req) => {
        reaper.heard(req);
      },
    }).catch(async (err: unknown) => {
      await reaper.stop();
      throw err;
    });
    return async () => {
      await manager.stop();
      await reaper.stop();
    };
  }
  const config = parseAgentConfig(args[0] ?? '');
  const agent = await startAgent({ config, log });
  // A pod being deleted still gets connections until kube-proxy has caught up with its
  // endpoints (about a second, several on a busy node): the ports it serves stay open a while.
  const drainMs =
    config.ports.length + (config.proxies?.length ?? 0) === 0
      ? 0
      : Number(process.env.TP_AGENT_DRAIN_MS ?? AGENT_DRAIN_MS);
  return async () => {
    if (drainMs > 0) {
      log({ msg: 'tp agent draining', ms: drainMs });
      await new Promise((resolve) => setTimeout(resolve, drainMs));
    }
    await agent.stop();
  };
}

/**
 * How long an agent that serves ports keeps serving them once told to stop; the pod's grace
 * period ends it sooner. A busy node's kube-proxy took over 3 s to drop a deleted pod.
 */
const AGENT_DRAIN_MS = 10_000;

const role = (process.argv[2] ?? 'manager') as Role;
if (!roles.includes(role)) {
  console.error(`unknown role ${role}: use ${roles.join(', ')}`);
  process.exitCode = 2;
} else {
  try {
    const stop = await run(role, process.argv.slice(3));
    if (stop !== undefined) {
      const onSignal = (signal: string): void => {
        log({ msg: 'tp agent stopping', role, signal });
        void stop().then(() => {
          log({ msg: 'tp agent stopped', role });
        });
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    }
  } catch (err) {
    log({ msg: 'tp agent failed', role, error: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
  }
}
