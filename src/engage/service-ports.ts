/**
 * Which Service port an intercept or wiretap takes (Telepresence's `--service` and
 * `--port local:remote`): the TCP ports of the Services that select the workload's pods and
 * reach the target container. The agent gets the port's traffic by its targetPort, so a port
 * that reaches another container of the pod is not the target's to take.
 */
import type { HttpFilter } from '../contract/agent.js';
import { declaredProtocol } from '../contract/app-protocol.js';
import { TpError } from '../lib/errors.js';
import { SIDECAR } from './agent-container.js';
import type { PortFlag } from './ports.js';
import { portKey, readOriginalTargets } from './service-switch.js';
import type { Container, ServiceObject, ServicePortSpec, WorkloadObject } from './workload.js';

export interface ServicePortInput {
  workload: WorkloadObject;
  /** The target container, as pickContainer chose it. */
  container: Container;
  /** Every Service of the workload's namespace. */
  services: readonly ServiceObject[];
  /** `--service`. */
  service?: string;
  /** `--port local[:remote]`: remote names the Service port, its targetPort or container port. */
  port?: PortFlag;
}

export interface ServicePortChoice {
  service: string;
  port: number;
  protocol: 'TCP';
  portName?: string;
  appProtocol?: string;
  /**
   * As the Service has it (absent: the port itself); as it had it before tp switched it to an
   * agent, when another session's engagement did.
   */
  targetPort: number | string;
  /** The container port that targetPort reaches. */
  containerPort: number;
  /** Where the daemon sends it: the flag's local port, else the container port. */
  local: number;
}

/** A (Service, port) pair whose traffic reaches the target container. */
interface Candidate {
  service: ServiceObject;
  spec: ServicePortSpec;
  targetPort: number | string;
  containerPort: number;
  /** The container's name for containerPort, when it has one. */
  containerPortName?: string;
}

export function selects(service: ServiceObject, workload: WorkloadObject): boolean {
  const selector = Object.entries(service.spec.selector ?? {});
  const labels = workload.spec.template.metadata?.labels ?? {};
  // An empty selector selects no pod: such a Service's endpoints are managed by hand.
  return selector.length > 0 && selector.every(([k, v]) => labels[k] === v);
}

export function resolveServicePort(input: ServicePortInput): ServicePortChoice {
  const { workload, container, port: flag } = input;
  const id = `${workload.kind.toLowerCase()}/${workload.metadata.name}`;
  const services = servicesOf(input, id);
  if (flag?.protocol === 'UDP') {
    throw new TpError(
      'usage',
      `--port ${flagText(flag)}: intercepts and wiretaps take TCP ports only.`,
      {
        code: 'PORT_NOT_TCP',
        fix: 'Name a TCP port of the Service, or use tp replace for a UDP port.',
      },
    );
  }
  const reaches = portsReaching(workload, container);
  const candidates = services.flatMap((s) => candidatesOf(s, container, reaches));
  if (candidates.length === 0) {
    throw new TpError(
      'state',
      `No TCP port of ${services.length === 1 ? 'Service' : 'Services'} ${names(services)} reaches container ${container.name} of ${id}.`,
      {
        code: 'NO_SERVICE_PORT',
        fix: `Pick the container the Service sends to with --container, or use \`tp replace ${workload.metadata.name} --port local:containerPort\`.`,
      },
    );
  }
  const only = pickCandidate(candidates, flag, id);
  return {
    service: only.service.metadata.name,
    port: only.spec.port,
    protocol: 'TCP',
    ...(only.spec.name === undefined ? {} : { portName: only.spec.name }),
    ...(only.spec.appProtocol === undefined ? {} : { appProtocol: only.spec.appProtocol }),
    targetPort: only.targetPort,
    containerPort: only.containerPort,
    local: flag?.local ?? only.containerPort,
  };
}

/** The Services whose ports count: the one --service names, else all that select the workload. */
function servicesOf(input: ServicePortInput, id: string): ServiceObject[] {
  const { workload } = input;
  const { name, namespace } = workload.metadata;
  const labels = workload.spec.template.metadata?.labels;
  const selecting = input.services.filter((s) => selects(s, workload));
  const wanted = input.service;
  if (wanted !== undefined) {
    const named = input.services.find((s) => s.metadata.name === wanted);
    if (named === undefined) {
      throw new TpError(
        'usage',
        `--service ${wanted}: there is no Service ${wanted} in namespace ${namespace}; ${
          selecting.length === 0
            ? `none selects ${id}`
            : `those that select ${id}: ${names(selecting)}`
        }.`,
        {
          code: 'SERVICE_UNKNOWN',
          fix:
            selecting.length === 0
              ? `Create a Service that selects ${id}, or use \`tp replace ${name} --port local:containerPort\`, which takes the container's ports directly.`
              : 'Name one of them with --service.',
        },
      );
    }
    if (!selects(named, workload)) {
      throw new TpError(
        'usage',
        `--service ${wanted}: Service ${wanted} does not select the pods of ${id}: its selector is ${labelText(named.spec.selector)}, their labels are ${labelText(labels)}.`,
        {
          code: 'SERVICE_NOT_SELECTING',
          fix:
            selecting.length === 0
              ? `Name a Service that selects ${id} with --service.`
              : `Name a Service that selects ${id} with --service: ${names(selecting)}.`,
        },
      );
    }
    return [named];
  }
  if (selecting.length === 0) {
    throw new TpError(
      'state',
      `${id} has no Service in namespace ${namespace} (none selects its pods' labels ${labelText(labels)}), and an intercept or wiretap takes a Service's traffic.`,
      {
        code: 'NO_SERVICE',
        fix: `Use \`tp replace ${name} --port local:containerPort\`, which takes the container's ports directly, or create a Service that selects ${id}.`,
      },
    );
  }
  return selecting;
}

/** The one candidate the flag names, or the only one there is. */
function pickCandidate(
  candidates: readonly Candidate[],
  flag: PortFlag | undefined,
  id: string,
): Candidate {
  const remote = flag?.remote;
  const matching = remote === undefined ? candidates : matchRemote(candidates, remote);
  const [only, ...more] = matching;
  if (only === undefined) {
    throw new TpError(
      'usage',
      `--port ${flagText(flag)}: no Service port of ${id} is or targets ${String(remote)}; it has ${listOf(candidates)}.`,
      {
        code: 'PORT_UNKNOWN',
        fix: 'Name one of them as --port local:remote (the Service port, by number or name).',
      },
    );
  }
  if (more.length > 0) {
    throw new TpError(
      'usage',
      `${flag === undefined ? '' : `--port ${flagText(flag)}: `}${id} has several Service ports: ${listOf(matching)}.`,
      {
        code: 'PORT_AMBIGUOUS',
        fix: 'Say which one as --port local:remote (the Service port, by number or name), or with --service.',
      },
    );
  }
  return only;
}

/**
 * Refuses a filter on a port that says it speaks something other than HTTP: the agent reads
 * no requests there, so the filter would take nothing.
 */
export function checkFilterPort(choice: ServicePortChoice, filter: HttpFilter | undefined): void {
  if (filter === undefined) return;
  const declared = choice.appProtocol ?? choice.portName;
  if (declaredProtocol(declared) !== 'tcp') return;
  const by = choice.appProtocol === undefined ? 'its name says' : 'its appProtocol says';
  throw new TpError(
    'usage',
    `Service port ${choice.service}:${choice.port} speaks ${String(declared)} (${by}), not HTTP: --http-header and --http-path-prefix filter HTTP requests.`,
    {
      code: 'FILTER_NOT_HTTP',
      fix: 'Leave out --http-header and --http-path-prefix to take all TCP connections to the port.',
    },
  );
}

/**
 * Which numeric targetPorts reach the container: those it declares; any, when it declares
 * none (a port it listens on undeclared) or is the pod's only container.
 */
function portsReaching(workload: WorkloadObject, c: Container): (port: number) => boolean {
  const declared = (c.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  const others = workload.spec.template.spec.containers.filter(
    (x) => x.name !== c.name && x.name !== SIDECAR,
  );
  if ((c.ports ?? []).length === 0 || others.length === 0) return () => true;
  return (port) => declared.some((p) => p.containerPort === port);
}

function candidatesOf(
  service: ServiceObject,
  c: Container,
  reaches: (port: number) => boolean,
): Candidate[] {
  // A port another session switched to an agent points at the agent: its original is the app's.
  const originals = readOriginalTargets(service);
  const out: Candidate[] = [];
  for (const spec of service.spec.ports ?? []) {
    if ((spec.protocol ?? 'TCP') !== 'TCP') continue;
    const targetPort = originals[portKey(spec.port)] ?? spec.targetPort ?? spec.port;
    if (typeof targetPort === 'string') {
      const named = (c.ports ?? []).find(
        (p) => p.name === targetPort && (p.protocol ?? 'TCP') === 'TCP',
      );
      if (named === undefined) continue;
      out.push({
        service,
        spec,
        targetPort,
        containerPort: named.containerPort,
        containerPortName: targetPort,
      });
    } else if (reaches(targetPort)) {
      const name = (c.ports ?? []).find(
        (p) => p.containerPort === targetPort && (p.protocol ?? 'TCP') === 'TCP',
      )?.name;
      out.push({
        service,
        spec,
        targetPort,
        containerPort: targetPort,
        ...(name === undefined ? {} : { containerPortName: name }),
      });
    }
  }
  return out;
}

/**
 * The candidates `remote` names: by the Service port first, which is what clients dial and
 * what Telepresence's `--port` names; else by the targetPort or container port.
 */
function matchRemote(candidates: readonly Candidate[], remote: number | string): Candidate[] {
  const bySpec = candidates.filter((c) =>
    typeof remote === 'number' ? c.spec.port === remote : c.spec.name === remote,
  );
  if (bySpec.length > 0) return bySpec;
  return candidates.filter((c) =>
    typeof remote === 'number'
      ? c.containerPort === remote
      : c.targetPort === remote || c.containerPortName === remote,
  );
}

/** `echo:80 (http) → 8080, echo:9090 → metrics`. */
function listOf(candidates: readonly Candidate[]): string {
  return candidates
    .map(
      (c) =>
        `${c.service.metadata.name}:${c.spec.port}${c.spec.name === undefined ? '' : ` (${c.spec.name})`} → ${c.targetPort}`,
    )
    .join(', ');
}

function names(list: readonly ServiceObject[]): string {
  return list.map((s) => s.metadata.name).join(', ');
}

function labelText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? 'empty' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

function flagText(flag: PortFlag | undefined): string {
  if (flag === undefined) return '';
  return `${flag.local}${flag.remote === undefined ? '' : `:${flag.remote}`}${flag.protocol === undefined ? '' : `/${flag.protocol.toLowerCase()}`}`;
}
