/**
 * The Service side of intercept and wiretap (docs/intercepts.md): which Service port is
 * taken, and its targetPort pointed at the agent once every pod has one, then back before
 * the agent goes. Whatever tp switched is recorded on the Service, so any session's leave,
 * or tp-manager, restores it exactly.
 */
import type { HttpFilter } from '../contract/agent.js';
import type { ReadWorkload } from '../k8s/engage.js';
import type { ServiceClient } from '../k8s/services.js';
import { TpError } from '../lib/errors.js';
import { FIELD_MANAGER_RESTORED } from '../lib/k8s-keys.js';
import { filterOf } from './filters.js';
import {
  pickContainer,
  readEngagements,
  SIDECAR,
  type Engagements,
  type TapRequest,
} from './plan.js';
import { parsePortFlag } from './ports.js';
import { checkFilterPort, resolveServicePort } from './service-ports.js';
import { planServiceSwitch, serviceSwitches } from './service-switch.js';

export interface TapFlags {
  mode: string;
  container?: string;
  ports: string[];
  service?: string;
  httpHeaders?: string[];
  httpPathPrefixes?: string[];
}

const isTap = (mode: string): boolean => mode === 'intercept' || mode === 'wiretap';

/** The filter the flags give, checked before anything is read from the cluster. */
export function tapFilter(flags: TapFilterFlags): HttpFilter | undefined {
  const given =
    (flags.httpHeaders?.length ?? 0) + (flags.httpPathPrefixes?.length ?? 0) > 0 ||
    flags.service !== undefined;
  if (!isTap(flags.mode)) {
    if (given) {
      throw new TpError(
        'usage',
        `tp ${flags.mode} takes no --service, --http-header or --http-path-prefix.`,
        {
          code: 'TAP_FLAG_NOT_ALLOWED',
          fix: 'Use tp intercept or tp wiretap to take some of a Service port’s traffic.',
        },
      );
    }
    return undefined;
  }
  if (flags.ports.length > 1) {
    throw new TpError('usage', `tp ${flags.mode} takes one Service port at a time.`, {
      code: 'PORT_FLAG_REPEATED',
      fix: `Give one --port local[:remote]; run tp ${flags.mode} again in another session for another port.`,
    });
  }
  for (const p of flags.ports) parsePortFlag(p);
  return filterOf(flags.httpHeaders ?? [], flags.httpPathPrefixes ?? []);
}

type TapFilterFlags = Pick<
  TapFlags,
  'mode' | 'ports' | 'service' | 'httpHeaders' | 'httpPathPrefixes'
>;

/** The Service port an intercept or wiretap takes; undefined for the other modes. */
export async function chooseTap(
  services: ServiceClient,
  workload: ReadWorkload,
  flags: TapFlags,
  filter: HttpFilter | undefined,
): Promise<TapRequest | undefined> {
  if (!isTap(flags.mode)) return undefined;
  const containers = workload.spec.template.spec.containers.filter((c) => c.name !== SIDECAR);
  const container = pickContainer(containers, flags.container, workload);
  const [portFlag] = flags.ports;
  const choice = resolveServicePort({
    workload,
    container,
    services: await services.list(workload.metadata.namespace),
    ...(flags.service === undefined ? {} : { service: flags.service }),
    ...(portFlag === undefined ? {} : { port: parsePortFlag(portFlag) }),
  });
  checkFilterPort(choice, filter);
  const appProtocol = choice.appProtocol ?? choice.portName;
  return {
    service: choice.service,
    servicePort: choice.port,
    containerPort: choice.containerPort,
    local: choice.local,
    ...(appProtocol === undefined ? {} : { appProtocol }),
    ...(filter === undefined ? {} : { filter }),
  };
}

/** How long a switch waits for the EndpointSlices to follow, before going on regardless. */
const ENDPOINTS_WAIT_MS = 10_000;

/**
 * Points the Service's ports at the agent as `engagements` want, or back once none does, and
 * waits until its EndpointSlices say so: kube-proxy routes by them, so an intercept counts as
 * taken, or a leave as given back, only once they do.
 */
export async function switchService(
  services: ServiceClient,
  namespace: string,
  name: string,
  engagements: Engagements,
  agentPods?: readonly string[],
): Promise<void> {
  const deadline = Date.now() + ENDPOINTS_WAIT_MS;
  // The pods the rollout replaced must be gone from the endpoints first: switched while still
  // listed, they would be sent the agent's port, where nothing listens in them.
  while (agentPods !== undefined && Date.now() < deadline) {
    const ready = await services.readyPods(name, namespace);
    if (ready === undefined || ready.every((p) => agentPods.includes(p))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const service = await services.read(name, namespace);
  const plan = planServiceSwitch(service, serviceSwitches(Object.values(engagements), name));
  const applied = await services.apply(plan.apply);
  if (plan.handover !== undefined) await services.apply(plan.handover, FIELD_MANAGER_RESTORED);
  for (const p of plan.apply.spec?.ports ?? []) {
    const now = (applied.spec.ports ?? []).find((q) => q.port === p.port);
    const before = (service.spec.ports ?? []).find((q) => q.port === p.port)?.targetPort;
    if (now === undefined || now.targetPort === before) continue;
    for (;;) {
      const ports = await services.endpointPorts(name, namespace, now.name);
      if (ports === undefined || Date.now() > deadline) break;
      // A named targetPort resolves per pod: gone from the old number is what counts then.
      const done =
        typeof p.targetPort === 'number'
          ? ports.length > 0 && ports.every((n) => n === p.targetPort)
          : ports.length > 0 && !ports.includes(Number(before));
      if (done) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Before `session` leaves `w`: the Service ports only its engagement took go back to the
 * app, while the agent still stands there to take what arrives meanwhile.
 */
export async function releaseService(
  services: ServiceClient,
  w: ReadWorkload,
  session: string,
): Promise<void> {
  const current = readEngagements(w);
  const name = current[session]?.service?.name;
  if (name === undefined) return;
  const remaining = Object.fromEntries(Object.entries(current).filter(([s]) => s !== session));
  await switchService(services, w.metadata.namespace, name, remaining);
}

/** After a failed engagement: the Service as the workload's engagements want it, quietly. */
export async function restoreServiceQuietly(
  services: ServiceClient,
  name: string,
  w: ReadWorkload,
  session: string,
): Promise<void> {
  const current = readEngagements(w);
  const remaining = Object.fromEntries(Object.entries(current).filter(([s]) => s !== session));
  await switchService(services, w.metadata.namespace, name, remaining).catch(() => undefined);
}
