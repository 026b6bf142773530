/** The pure plan of an engagement: workloads as the API server returns them, modelled on the lab's samples. */
import test from 'ava';
import { AGENT_COMMAND, AGENT_HEALTH_PORT, type AgentConfig } from '../../src/contract/agent.js';
import {
  planEngagement,
  planLeave,
  readEngagements,
  SIDECAR,
  type EngageRequest,
} from '../../src/engage/plan.js';
import { checkLocalPorts, parsePortFlag, planPorts } from '../../src/engage/ports.js';
import type { Container, WorkloadObject } from '../../src/engage/workload.js';
import { TpError } from '../../src/lib/errors.js';
import { ANNOTATION_ENGAGEMENTS, ANNOTATION_ORIGINAL } from '../../src/lib/k8s-keys.js';

const echoContainer: Container = {
  name: 'echo',
  image: 'samples:1',
  args: ['echo', '-listen', ':8080'],
  ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
  env: [{ name: 'GREETING', value: 'hello from the cluster' }],
  readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 2 },
  livenessProbe: { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' }, periodSeconds: 10 },
};

function workload(containers: Container[], extra: Partial<WorkloadObject> = {}): WorkloadObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: 'samples' },
    spec: { replicas: 1, template: { spec: { containers } } },
    ...extra,
  };
}

const request = (over: Partial<EngageRequest> = {}): EngageRequest => ({
  mode: 'replace',
  session: 's1',
  ports: [],
  agentImage: 'registry/tp-agent:1',
  by: 'alice',
  now: '2026-11-28T00:00:00Z',
  ...over,
});

/** The workload as the API server would hold it after tp's apply: annotations and containers merged. */
function afterApply(
  w: WorkloadObject,
  apply: ReturnType<typeof planEngagement>['apply'],
): WorkloadObject {
  const merged = structuredClone(w);
  merged.metadata.annotations = { ...merged.metadata.annotations, ...apply.metadata.annotations };
  for (const c of apply.spec?.template.spec.containers ?? []) {
    const list = merged.spec.template.spec.containers;
    const i = list.findIndex((x) => x.name === c.name);
    if (i < 0) list.push(c as unknown as Container);
    else list[i] = { ...list[i], ...(c as unknown as Container) };
  }
  return merged;
}

const configOf = (c: Record<string, unknown>): AgentConfig =>
  JSON.parse((c.args as string[])[1] ?? '{}') as AgentConfig;

test('replace turns the container into the agent in place, with its ports, and points its probes at the agent', (t) => {
  const plan = planEngagement(workload([echoContainer]), request());
  t.is(plan.container, 'echo');
  t.deepEqual(plan.ports, [{ port: 8080, protocol: 'TCP', name: 'http', local: 8080 }]);
  const [agent] = plan.apply.spec?.template.spec.containers ?? [];
  t.like(agent, { name: 'echo', image: 'registry/tp-agent:1', command: AGENT_COMMAND });
  // Readiness at the agent's pace; liveness keeps the app's (the user's fields stay its own).
  t.deepEqual(agent?.readinessProbe, {
    tcpSocket: { port: AGENT_HEALTH_PORT },
    initialDelaySeconds: 0,
    periodSeconds: 1,
  });
  t.deepEqual(agent?.livenessProbe, {
    httpGet: { path: '/healthz', port: AGENT_HEALTH_PORT, scheme: 'HTTP' },
  });
  t.like(configOf(agent ?? {}), {
    container: 'echo',
    ports: [{ port: 8080, protocol: 'TCP', name: 'http' }],
  });
  // Ports, env and mounts stay the user's: tp does not state them.
  t.is(agent?.ports, undefined);
  t.is(agent?.env, undefined);
});

test('replace records the original values of exactly the fields it changes', (t) => {
  const plan = planEngagement(workload([echoContainer]), request());
  const original = JSON.parse(
    plan.apply.metadata.annotations?.[ANNOTATION_ORIGINAL] ?? '{}',
  ) as Container;
  t.deepEqual(original, {
    name: 'echo',
    image: 'samples:1',
    args: ['echo', '-listen', ':8080'],
    readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' } },
  });
  const engagements = JSON.parse(
    plan.apply.metadata.annotations?.[ANNOTATION_ENGAGEMENTS] ?? '{}',
  ) as object;
  t.like(engagements, { s1: { mode: 'replace', container: 'echo', by: 'alice' } });
});

test('leaving the last engagement applies the original values and states nothing else', (t) => {
  const w = workload([echoContainer]);
  const engaged = afterApply(w, planEngagement(w, request()).apply);
  const leave = planLeave(engaged, 's1');
  t.deepEqual(leave?.remaining, {});
  t.deepEqual(leave?.apply, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: 'samples' },
    spec: {
      template: {
        spec: {
          containers: [
            {
              name: 'echo',
              image: 'samples:1',
              args: ['echo', '-listen', ':8080'],
              readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 2 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' } },
            },
          ],
        },
      },
    },
  });
  t.is(planLeave(w, 's1'), undefined, 'a session that engaged nothing has nothing to leave');
});

test('ingest adds a restricted sidecar with the container env and read-only mounts, and no ports', (t) => {
  const app: Container = {
    name: 'app',
    env: [{ name: 'MEMORY_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }],
    envFrom: [{ configMapRef: { name: 'volumes-config' } }],
    volumeMounts: [
      { name: 'config', mountPath: '/etc/config', readOnly: true },
      { name: 'data', mountPath: '/data' },
    ],
    ports: [{ containerPort: 8080 }],
  };
  const plan = planEngagement(workload([app]), request({ mode: 'ingest' }));
  t.deepEqual(plan.ports, []);
  const [sidecar] = plan.apply.spec?.template.spec.containers ?? [];
  t.like(sidecar, { name: SIDECAR, envFrom: app.envFrom });
  t.deepEqual(sidecar?.env, [
    {
      name: 'MEMORY_LIMIT',
      valueFrom: { resourceFieldRef: { resource: 'limits.memory', containerName: 'app' } },
    },
  ]);
  t.deepEqual(sidecar?.volumeMounts, [
    { name: 'config', mountPath: '/etc/config', readOnly: true },
    { name: 'data', mountPath: '/data', readOnly: true },
  ]);
  t.like(sidecar?.securityContext, { allowPrivilegeEscalation: false, runAsNonRoot: true });
  t.deepEqual(configOf(sidecar ?? {}).mounts, [
    { path: '/etc/config', readOnly: true },
    { path: '/data', readOnly: true },
  ]);
  t.is(plan.apply.metadata.annotations?.[ANNOTATION_ORIGINAL], undefined);
});

test('several sessions share one ingest; the sidecar goes only when the last leaves', (t) => {
  const w0 = workload([echoContainer]);
  const w1 = afterApply(w0, planEngagement(w0, request({ mode: 'ingest', session: 'a' })).apply);
  const w2 = afterApply(w1, planEngagement(w1, request({ mode: 'ingest', session: 'b' })).apply);
  t.deepEqual(Object.keys(readEngagements(w2)).sort(), ['a', 'b']);
  const leaveA = planLeave(w2, 'a');
  t.deepEqual(Object.keys(leaveA?.remaining ?? {}), ['b']);
  t.like(leaveA?.apply.spec?.template.spec.containers[0], {
    name: SIDECAR,
    image: 'registry/tp-agent:1',
  });
  if (leaveA === undefined) return t.fail('a has an engagement');
  const w3 = afterApply(w2, leaveA.apply);
  w3.metadata.annotations = leaveA.apply.metadata.annotations ?? {};
  const leaveB = planLeave(w3, 'b');
  t.deepEqual(leaveB?.apply, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: 'samples' },
  });
});

test('a replace is refused while another session holds the workload, naming who', (t) => {
  const w0 = workload([echoContainer]);
  const replaced = afterApply(w0, planEngagement(w0, request({ session: 'a', by: 'alice' })).apply);
  const err = t.throws(() => planEngagement(replaced, request({ session: 'b' })), {
    instanceOf: TpError,
  });
  t.like(err, { code: 'WORKLOAD_HELD', category: 'state' });
  t.regex(err.message, /replaced by session a \(alice\)/);
  t.like(
    t.throws(() => planEngagement(replaced, request({ session: 'a' }))),
    { code: 'ALREADY_ENGAGED' },
  );
  const ingested = afterApply(
    w0,
    planEngagement(w0, request({ mode: 'ingest', session: 'a' })).apply,
  );
  t.like(
    t.throws(() => planEngagement(ingested, request({ session: 'b' }))),
    { code: 'WORKLOAD_HELD' },
  );
  t.notThrows(() => planEngagement(ingested, request({ mode: 'ingest', session: 'b' })));
});

test('the container must be named when there are several, and must exist', (t) => {
  const multi = workload([
    {
      name: 'web',
      ports: [
        { name: 'http', containerPort: 8080 },
        { name: 'admin', containerPort: 8081 },
      ],
    },
    { name: 'sidecar', ports: [{ name: 'raw', containerPort: 9000 }] },
  ]);
  const ambiguous = t.throws(() => planEngagement(multi, request()), { instanceOf: TpError });
  t.like(ambiguous, { code: 'CONTAINER_AMBIGUOUS', category: 'usage' });
  t.regex(ambiguous.message, /web, sidecar/);
  t.like(
    t.throws(() => planEngagement(multi, request({ container: 'nope' }))),
    { code: 'CONTAINER_UNKNOWN' },
  );
  const web = planEngagement(multi, request({ container: 'web' }));
  t.deepEqual(
    web.ports.map((p) => p.port),
    [8080, 8081],
  );
});

test('bare pods, DaemonSets for replace and workloads scaled to zero are refused', (t) => {
  t.like(
    t.throws(() => planEngagement(workload([echoContainer], { kind: 'Pod' }), request())),
    { code: 'WORKLOAD_KIND' },
  );
  const ds = workload([echoContainer], { kind: 'DaemonSet' });
  t.like(
    t.throws(() => planEngagement(ds, request())),
    { code: 'WORKLOAD_KIND' },
  );
  t.notThrows(() => planEngagement(ds, request({ mode: 'ingest' })));
  const zero = workload([echoContainer]);
  zero.spec.replicas = 0;
  t.like(
    t.throws(() => planEngagement(zero, request())),
    { code: 'WORKLOAD_SCALED_TO_ZERO', category: 'state' },
  );
  t.like(
    t.throws(() =>
      planEngagement(workload([echoContainer]), request({ mode: 'ingest', ports: ['8080'] })),
    ),
    {
      code: 'PORT_NOT_ALLOWED',
    },
  );
});

test('a gRPC probe is refused before anything changes; exec probes and hooks go to the agent', (t) => {
  const grpc = { ...echoContainer, readinessProbe: { grpc: { port: 9000 } } };
  t.like(
    t.throws(() => planEngagement(workload([grpc]), request())),
    { code: 'PROBE_UNSUPPORTED' },
  );
  const exec = {
    ...echoContainer,
    livenessProbe: { exec: { command: ['check'] } },
    lifecycle: { preStop: { exec: { command: ['drain'] } } },
  };
  const [agent] =
    planEngagement(workload([exec]), request()).apply.spec?.template.spec.containers ?? [];
  t.deepEqual(agent?.livenessProbe, { exec: { command: [...AGENT_COMMAND, 'probe'] } });
  t.deepEqual(agent?.lifecycle, { preStop: { exec: { command: [...AGENT_COMMAND, 'probe'] } } });
});

test('--port flags parse as local[:remote][/tcp|/udp] and bad ones say how to write them', (t) => {
  t.deepEqual(parsePortFlag('8080'), { local: 8080 });
  t.deepEqual(parsePortFlag('9090:8080'), { local: 9090, remote: 8080 });
  t.deepEqual(parsePortFlag('9090:http'), { local: 9090, remote: 'http' });
  t.deepEqual(parsePortFlag('5353:53/udp'), { local: 5353, remote: 53, protocol: 'UDP' });
  for (const bad of ['', 'x', '0', '70000', '1:2:3', '80:Bad_Name', '80/sctp']) {
    t.like(
      t.throws(() => parsePortFlag(bad), { instanceOf: TpError }),
      { code: 'PORT_FLAG_INVALID' },
      bad,
    );
  }
});

test('ports: flags remap declared ports, add undeclared numbers, and refuse unknown names and clashes', (t) => {
  const web: Container = {
    name: 'web',
    ports: [
      { name: 'http', containerPort: 8080 },
      { name: 'admin', containerPort: 8081 },
    ],
  };
  t.deepEqual(
    planPorts(web, [parsePortFlag('9090:http'), parsePortFlag('7000:7000/udp')]).map(
      (p) => `${p.port}/${p.protocol}->${p.local}`,
    ),
    ['8080/TCP->9090', '8081/TCP->8081', '7000/UDP->7000'],
  );
  t.like(
    t.throws(() => planPorts(web, [parsePortFlag('9090')])),
    { code: 'PORT_AMBIGUOUS' },
  );
  t.like(
    t.throws(() => planPorts(web, [parsePortFlag('9090:metrics')])),
    { code: 'PORT_UNKNOWN' },
  );
  t.like(
    t.throws(() => planPorts(web, [parsePortFlag('8081:http')])),
    { code: 'PORT_LOCAL_TWICE' },
  );
  t.deepEqual(planPorts({ name: 'bare' }, [parsePortFlag('8080')]), [
    { port: 8080, protocol: 'TCP', local: 8080 },
  ]);
});

test('a malformed engagements annotation counts as none', (t) => {
  for (const raw of ['{', '[]', 'null', '{"s":{"mode":"nope"}}']) {
    t.deepEqual(
      readEngagements(
        workload([], {
          metadata: { name: 'x', namespace: 'y', annotations: { [ANNOTATION_ENGAGEMENTS]: raw } },
        }),
      ),
      {},
      raw,
    );
  }
});

test('the agent leaves out HOME and its image’s variables, unless the pod spec sets them', (t) => {
  const own = (c: Container): string[] => {
    const [agent] =
      planEngagement(workload([c]), request()).apply.spec?.template.spec.containers ?? [];
    return configOf(agent ?? {}).ownEnv;
  };
  t.deepEqual(own(echoContainer), ['NODE_VERSION', 'YARN_VERSION', 'NODE_ENV', 'HOME']);
  const setsHome = { ...echoContainer, env: [{ name: 'HOME', value: '/srv' }] };
  t.deepEqual(own(setsHome), ['NODE_VERSION', 'YARN_VERSION', 'NODE_ENV']);
});

test('a full restore is applied again by a second manager, so that a later apply without those fields keeps them', (t) => {
  const w = workload([echoContainer]);
  const replaced = afterApply(w, planEngagement(w, request()).apply);
  const leave = planLeave(replaced, 's1');
  t.deepEqual(leave?.handover, leave?.apply);
  // An ingest changed no field of the container: nothing to hand over.
  const ingested = afterApply(w, planEngagement(w, request({ mode: 'ingest' })).apply);
  t.is(planLeave(ingested, 's1')?.handover, undefined);
});

test('a local port another engagement of the session uses is refused, suggesting --port', (t) => {
  const ports = planPorts({ name: 'web', ports: [{ name: 'http', containerPort: 8080 }] }, []);
  const err = t.throws(
    () => {
      checkLocalPorts(ports, [
        { workload: 'deployment/other', ports: [{ local: 8080, protocol: 'TCP' }] },
      ]);
    },
    { instanceOf: TpError },
  );
  t.like(err, { code: 'LOCAL_PORT_TAKEN', category: 'usage' });
  t.regex(err.fix, /--port <free port>:http/);
  t.notThrows(() => {
    checkLocalPorts(ports, [
      { workload: 'deployment/dns', ports: [{ local: 8080, protocol: 'UDP' }] },
    ]);
  });
});

test('the engagement records the session’s grace and tp-manager, for the reaper', (t) => {
  const plan = planEngagement(
    workload([echoContainer]),
    request({ grace: 8, manager: 'tp-system' }),
  );
  t.like(readEngagements(afterApply(workload([echoContainer]), plan.apply)).s1, {
    since: '2026-11-28T00:00:00Z',
    grace: 8,
    manager: 'tp-system',
  });
  const without = planEngagement(workload([echoContainer]), request());
  t.false('grace' in (without.engagements.s1 ?? {}));
  t.false('manager' in (without.engagements.s1 ?? {}));
});
