/**
 * tp-manager's reaper: which engagements of silent sessions it restores and when it looks
 * again (the pure decision), and a sweep against an API server stood in for in memory.
 */
import test from 'ava';
import {
  MAX_SWEEP_MS,
  MIN_SWEEP_MS,
  createReaper,
  reapDecision,
  type Engaged,
  type Heard,
  type ReapInput,
} from '../../agent/reaper.js';
import { planEngagement, type EngagementRecord } from '../../src/engage/plan.js';
import type { ServiceApply } from '../../src/engage/service-switch.js';
import type { ServiceObject, WorkloadObject } from '../../src/engage/workload.js';
import type { AppsKind, ObjectMeta, WorkloadApi } from '../../src/k8s/in-cluster.js';
import type { WorkloadApply } from '../../src/engage/plan.js';
import { ANNOTATION_ENGAGEMENTS, ANNOTATION_ORIGINAL_TARGETS } from '../../src/lib/k8s-keys.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const s = (n: number): number => n * 1000;

function engaged(session: string, over: Partial<EngagementRecord> = {}, noticed = T0): Engaged {
  return {
    kind: 'Deployment',
    namespace: 'shop',
    name: 'echo',
    session,
    record: {
      mode: 'replace',
      container: 'echo',
      ports: [],
      since: new Date(T0).toISOString(),
      ...over,
    },
    noticed,
  };
}

function decide(over: Partial<ReapInput> & Pick<ReapInput, 'engaged' | 'now'>) {
  const r = reapDecision({
    heard: new Map<string, Heard>(),
    namespace: 'tp-system',
    startedAt: T0,
    ...over,
  });
  return { sessions: r.restore.map((e) => e.session), nextSweepMs: r.nextSweepMs, r };
}

test('a session heard within its grace is left be; the next sweep is when it could expire', (t) => {
  const heard = new Map([['alive', { at: T0 + s(100), grace: 60 }]]);
  const d = decide({ engaged: [engaged('alive', { grace: 60 })], heard, now: T0 + s(150) });
  t.deepEqual(d.sessions, []);
  t.is(d.nextSweepMs, s(10));
});

test('a session silent for longer than its grace is restored', (t) => {
  const heard = new Map([['gone', { at: T0 + s(100), grace: 8 }]]);
  const d = decide({ engaged: [engaged('gone', { grace: 8 })], heard, now: T0 + s(108) });
  t.deepEqual(d.sessions, ['gone']);
  t.like(d.r.restore[0], { lastSeen: T0 + s(100), grace: 8, name: 'echo' });
  t.is(d.nextSweepMs, MAX_SWEEP_MS, 'nothing else could expire');
});

test('without a grace anywhere, a session has 5 minutes', (t) => {
  t.deepEqual(decide({ engaged: [engaged('old')], now: T0 + s(299) }).sessions, []);
  t.deepEqual(decide({ engaged: [engaged('old')], now: T0 + s(300) }).sessions, ['old']);
});

test('a manager that just started counts every session as seen at its start', (t) => {
  // Engaged long ago and never heard by this manager, which started a minute ago.
  const d = decide({
    engaged: [engaged('s', { grace: 30 }, T0 - s(3600))],
    startedAt: T0 + s(3600),
    now: T0 + s(3620),
  });
  t.deepEqual(d.sessions, []);
  t.is(d.nextSweepMs, s(10));
  t.deepEqual(
    decide({
      engaged: [engaged('s', { grace: 30 }, T0 - s(3600))],
      startedAt: T0 + s(3600),
      now: T0 + s(3630),
    }).sessions,
    ['s'],
  );
});

test('the longer of the recorded and the announced grace wins, so a live session is never cut short', (t) => {
  // Engaged with 10 s, but its daemon heartbeats for 300 s (every 30 s).
  const heard = new Map([['s', { at: T0 + s(5), grace: 300 }]]);
  t.deepEqual(
    decide({ engaged: [engaged('s', { grace: 10 })], heard, now: T0 + s(34) }).sessions,
    [],
  );
  // And the other way round.
  const short = new Map([['s', { at: T0 + s(5), grace: 10 }]]);
  t.deepEqual(
    decide({ engaged: [engaged('s', { grace: 300 })], heard: short, now: T0 + s(34) }).sessions,
    [],
  );
  // The announced one alone counts when the record has none.
  t.deepEqual(decide({ engaged: [engaged('s')], heard: short, now: T0 + s(16) }).sessions, ['s']);
});

test('an engagement stamped by a clock ahead of the manager’s counts from when the manager first saw it', (t) => {
  const ahead = new Date(T0 + s(3600)).toISOString();
  const d = decide({ engaged: [engaged('s', { since: ahead, grace: 10 }, T0)], now: T0 + s(10) });
  t.deepEqual(d.sessions, ['s']);
  // A malformed `since` counts from then too.
  t.deepEqual(
    decide({ engaged: [engaged('s', { since: 'yesterday', grace: 10 }, T0)], now: T0 + s(9) })
      .sessions,
    [],
  );
});

test('a manager restores only the sessions it watches', (t) => {
  const now = T0 + s(1000);
  const rec = { grace: 10 };
  // The record names another manager: its heartbeats go there.
  t.deepEqual(decide({ engaged: [engaged('s', { ...rec, manager: 'other' })], now }).sessions, []);
  t.deepEqual(decide({ engaged: [engaged('s', { ...rec, manager: 'tp-system' })], now }).sessions, [
    's',
  ]);
  // No manager recorded: the default namespace's manager, or the one the session speaks to.
  const mine = { namespace: 'tp-e2e-x', now };
  t.deepEqual(decide({ engaged: [engaged('s', rec)], ...mine }).sessions, []);
  const heard = new Map([['s', { at: T0, grace: 10 }]]);
  t.deepEqual(decide({ engaged: [engaged('s', rec)], heard, ...mine }).sessions, ['s']);
  t.deepEqual(decide({ engaged: [engaged('s', rec)], now }).sessions, ['s']);
});

test('the next sweep is between 2 and 30 seconds away', (t) => {
  const soon = decide({ engaged: [engaged('s', { grace: 10 })], now: T0 + s(9.5) });
  t.is(soon.nextSweepMs, MIN_SWEEP_MS);
  const late = decide({ engaged: [engaged('s', { grace: 3600 })], now: T0 });
  t.is(late.nextSweepMs, MAX_SWEEP_MS);
  t.is(decide({ engaged: [], now: T0 }).nextSweepMs, MAX_SWEEP_MS);
});

// A sweep against an API server in memory.

const echo: WorkloadObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'echo', namespace: 'shop', annotations: { team: 'a' } },
  spec: {
    replicas: 1,
    template: {
      spec: {
        containers: [{ name: 'echo', image: 'samples:1', ports: [{ containerPort: 8080 }] }],
      },
    },
  },
};

/** The workload as an engagement left it: what the apply stated, merged over the original. */
function engagedBy(session: string, grace: number): WorkloadObject {
  const plan = planEngagement(echo, {
    mode: 'replace',
    session,
    ports: [],
    agentImage: 'registry/tp-agent:1',
    now: new Date(T0).toISOString(),
    grace,
  });
  const agent = plan.apply.spec?.template.spec.containers[0] ?? {};
  return {
    ...echo,
    metadata: {
      ...echo.metadata,
      annotations: { ...echo.metadata.annotations, ...plan.apply.metadata.annotations },
    },
    spec: {
      ...echo.spec,
      template: { spec: { containers: [{ ...echo.spec.template.spec.containers[0], ...agent }] } },
    } as WorkloadObject['spec'],
  };
}

class FakeApi implements WorkloadApi {
  applied: { manager: string; config: WorkloadApply }[] = [];
  serviceApplied: { manager: string; config: ServiceApply }[] = [];
  /** Every apply, Service or workload, as `<kind>/<name> by <manager>`. */
  order: string[] = [];
  services: ServiceObject[] = [];
  constructor(
    public workloads: WorkloadObject[],
    public extraMeta: ObjectMeta[] = [],
  ) {}
  list(kind: AppsKind): Promise<ObjectMeta[]> {
    const metas = this.workloads.filter((w) => w.kind === kind).map((w) => ({ ...w.metadata }));
    return Promise.resolve(kind === 'ReplicaSet' ? [...metas, ...this.extraMeta] : metas);
  }
  read(kind: string, namespace: string, name: string): Promise<WorkloadObject | undefined> {
    return Promise.resolve(
      this.workloads.find(
        (w) => w.kind === kind && w.metadata.namespace === namespace && w.metadata.name === name,
      ),
    );
  }
  apply(config: WorkloadApply, manager: string): Promise<void> {
    this.applied.push({ manager, config });
    this.order.push(`${config.kind.toLowerCase()}/${config.metadata.name} by ${manager}`);
    return Promise.resolve();
  }
  readService(namespace: string, name: string): Promise<ServiceObject | undefined> {
    return Promise.resolve(
      this.services.find((s) => s.metadata.namespace === namespace && s.metadata.name === name),
    );
  }
  applyService(config: ServiceApply, manager: string): Promise<void> {
    this.serviceApplied.push({ manager, config });
    this.order.push(`service/${config.metadata.name} by ${manager}`);
    return Promise.resolve();
  }
}

test('a sweep restores a silent session’s workload as tp leave does: applied by tp, then by tp-restored', async (t) => {
  const w = engagedBy('gone', 5);
  // A ReplicaSet of the Deployment carries the same annotation: it is not what is engaged.
  const copy: ObjectMeta = {
    name: 'echo-abc',
    namespace: 'shop',
    annotations: {
      [ANNOTATION_ENGAGEMENTS]: w.metadata.annotations?.[ANNOTATION_ENGAGEMENTS] ?? '',
    },
    ownerReferences: [{ kind: 'Deployment', name: 'echo', controller: true }],
  };
  const api = new FakeApi([w], [copy]);
  let now = T0 + s(1);
  const logs: object[] = [];
  const reaper = createReaper({
    namespace: 'tp-system',
    api: () => api,
    log: (o) => logs.push(o),
    now: () => now,
  });
  t.is(await reaper.sweep(), s(5));
  t.deepEqual(api.applied, []);
  now = T0 + s(6);
  await reaper.sweep();
  t.deepEqual(
    api.applied.map((a) => a.manager),
    ['tp', 'tp-restored'],
  );
  const restore = api.applied[0]?.config;
  // The original container's fields, and no engagement annotation: the server removes the rest.
  t.deepEqual(restore?.metadata, { name: 'echo', namespace: 'shop' });
  t.like(restore?.spec?.template.spec.containers[0], { name: 'echo', image: 'samples:1' });
  t.deepEqual(api.applied[1]?.config, restore);
  t.like(logs.at(-1), {
    msg: 'reaper: restored the engagement of a silent session',
    session: 'gone',
    workload: 'deployment/echo',
    restored: true,
  });
});

test('a sweep leaves a session that speaks up, and an engagement that is gone', async (t) => {
  const w = engagedBy('s', 5);
  const api = new FakeApi([w]);
  let now = T0 + s(1);
  const reaper = createReaper({
    namespace: 'tp-system',
    api: () => api,
    log: () => undefined,
    now: () => now,
  });
  now = T0 + s(4);
  reaper.heard({ v: 1, op: 'heartbeat', session: 's', grace: 5 });
  now = T0 + s(8);
  t.is(await reaper.sweep(), MIN_SWEEP_MS);
  t.deepEqual(api.applied, []);
  // Left by the CLI meanwhile: nothing to restore.
  now = T0 + s(20);
  api.workloads = [echo];
  await reaper.sweep();
  t.deepEqual(api.applied, []);
});

test('without a ServiceAccount token the reaper says so once and does nothing', async (t) => {
  const logs: object[] = [];
  const reaper = createReaper({
    namespace: 'tp-system',
    api: () => undefined,
    log: (o) => logs.push(o),
  });
  t.is(await reaper.sweep(), MAX_SWEEP_MS);
  await reaper.sweep();
  t.is(logs.length, 1);
});

test('a failing API is logged once per error, and the sweep goes on', async (t) => {
  const api = new FakeApi([engagedBy('gone', 5)]);
  api.apply = () => Promise.reject(new Error('HTTP 403 from /apis/apps/v1/...: forbidden'));
  const logs: { msg?: string }[] = [];
  let now = T0;
  const reaper = createReaper({
    namespace: 'tp-system',
    api: () => api,
    log: (o) => logs.push(o),
    now: () => now,
  });
  now = T0 + s(60);
  await reaper.sweep();
  await reaper.sweep();
  t.is(logs.filter((l) => l.msg?.includes('failed') === true).length, 1);
});

test('a session heard from brings the next sweep forward, for what it may engage before then', (t) => {
  const heard = new Map([['new', { at: T0, grace: 8 }]]);
  t.is(decide({ engaged: [], heard, now: T0 + s(1) }).nextSweepMs, s(7));
  // Long silent: nothing of it to wait for.
  t.is(decide({ engaged: [], heard, now: T0 + s(60) }).nextSweepMs, MAX_SWEEP_MS);
});

// Intercepts and wiretaps: the Service port tp pointed at the agent goes back too.

const switched = (port: number, listen: number): NonNullable<EngagementRecord['service']> => ({
  name: 'web',
  port,
  protocol: 'TCP',
  listen,
});

/** Workload `name` as intercepts by `sessions` left it: the sidecar and the annotation. */
function intercepted(
  name: string,
  sessions: Record<string, Partial<EngagementRecord>>,
): WorkloadObject {
  const engagements = Object.fromEntries(
    Object.entries(sessions).map(([session, over]) => [
      session,
      {
        mode: 'intercept',
        container: 'echo',
        ports: [],
        since: new Date(T0).toISOString(),
        grace: 5,
        ...over,
      } satisfies EngagementRecord,
    ]),
  );
  return {
    ...echo,
    metadata: {
      name,
      namespace: 'shop',
      annotations: { [ANNOTATION_ENGAGEMENTS]: JSON.stringify(engagements) },
    },
    spec: {
      ...echo.spec,
      template: {
        spec: {
          containers: [...echo.spec.template.spec.containers, { name: 'tp-agent', image: 'a:1' }],
        },
      },
    },
  };
}

/** Service web with ports 80 and 81 pointed at agent ports 9901 and 9902. */
const webService = (): ServiceObject => ({
  metadata: {
    name: 'web',
    namespace: 'shop',
    annotations: {
      [ANNOTATION_ORIGINAL_TARGETS]: JSON.stringify({ '80/TCP': 'http', '81/TCP': 8081 }),
    },
  },
  spec: {
    selector: { app: 'echo' },
    ports: [
      { name: 'http', port: 80, targetPort: 9901, protocol: 'TCP' },
      { name: 'admin', port: 81, targetPort: 9902, protocol: 'TCP' },
    ],
  },
});

async function sweepAt(api: FakeApi, at: number, alive: string[] = []): Promise<object[]> {
  let now = T0;
  const logs: object[] = [];
  const reaper = createReaper({
    namespace: 'tp-system',
    api: () => api,
    log: (o) => logs.push(o),
    now: () => now,
  });
  now = at;
  for (const session of alive) reaper.heard({ v: 1, op: 'heartbeat', session, grace: 5 });
  await reaper.sweep();
  return logs;
}

test('a silent intercept’s Service port is pointed back at the app before its agent goes', async (t) => {
  const api = new FakeApi([intercepted('echo', { gone: { service: switched(80, 9901) } })]);
  api.services = [webService()];
  const logs = await sweepAt(api, T0 + s(60));
  t.deepEqual(api.order, [
    'service/web by tp',
    'service/web by tp-restored',
    'deployment/echo by tp',
  ]);
  // Every port tp switched goes back, and the annotation is no longer stated.
  const restore = api.serviceApplied[0]?.config;
  t.deepEqual(restore?.metadata, { name: 'web', namespace: 'shop' });
  t.deepEqual(restore?.spec?.ports, [
    { port: 80, protocol: 'TCP', targetPort: 'http' },
    { port: 81, protocol: 'TCP', targetPort: 8081 },
  ]);
  t.deepEqual(api.serviceApplied[1]?.config, restore);
  t.like(logs.at(-1), { session: 'gone', service: 'web', restored: true });
});

test('a Service port another session still takes stays pointed at the agent', async (t) => {
  const api = new FakeApi([
    intercepted('echo', {
      gone: { service: switched(80, 9901) },
      alive: { service: switched(80, 9901), mode: 'wiretap' },
    }),
  ]);
  api.services = [webService()];
  await sweepAt(api, T0 + s(60), ['alive']);
  t.deepEqual(api.order, ['deployment/echo by tp']);
});

test('a Service port taken through another workload stays pointed at its agent', async (t) => {
  const api = new FakeApi([
    intercepted('echo', { gone: { service: switched(80, 9901) } }),
    intercepted('echo-canary', { alive: { service: switched(80, 9901) } }),
  ]);
  api.services = [webService()];
  await sweepAt(api, T0 + s(60), ['alive']);
  t.deepEqual(api.order, ['deployment/echo by tp']);
});

test('only the silent session’s port goes back; another port of the Service stays switched', async (t) => {
  const api = new FakeApi([
    intercepted('echo', {
      gone: { service: switched(80, 9901) },
      alive: { service: switched(81, 9902) },
    }),
  ]);
  api.services = [webService()];
  await sweepAt(api, T0 + s(60), ['alive']);
  t.deepEqual(api.order, [
    'service/web by tp',
    'service/web by tp-restored',
    'deployment/echo by tp',
  ]);
  t.deepEqual(api.serviceApplied[0]?.config, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'web',
      namespace: 'shop',
      annotations: { [ANNOTATION_ORIGINAL_TARGETS]: JSON.stringify({ '81/TCP': 8081 }) },
    },
    spec: {
      ports: [
        { port: 81, protocol: 'TCP', targetPort: 9902 },
        { port: 80, protocol: 'TCP', targetPort: 'http' },
      ],
    },
  });
  t.deepEqual(api.serviceApplied[1]?.config.spec?.ports, [
    { port: 80, protocol: 'TCP', targetPort: 'http' },
  ]);
});

test('when two silent sessions share a Service port, the last restored in the sweep points it back', async (t) => {
  const api = new FakeApi([
    intercepted('echo', { a: { service: switched(80, 9901) } }),
    intercepted('echo-canary', { b: { service: switched(80, 9901) } }),
  ]);
  api.services = [webService()];
  await sweepAt(api, T0 + s(60));
  t.deepEqual(api.order, [
    'deployment/echo by tp',
    'service/web by tp',
    'service/web by tp-restored',
    'deployment/echo-canary by tp',
  ]);
});

test('a Service that is gone, or that tp no longer switches, leaves the workload’s restore be', async (t) => {
  const gone = new FakeApi([intercepted('echo', { gone: { service: switched(80, 9901) } })]);
  await sweepAt(gone, T0 + s(60));
  t.deepEqual(gone.order, ['deployment/echo by tp']);
  const plain = new FakeApi([intercepted('echo', { gone: { service: switched(80, 9901) } })]);
  plain.services = [{ ...webService(), metadata: { name: 'web', namespace: 'shop' } }];
  await sweepAt(plain, T0 + s(60));
  t.deepEqual(plain.order, ['deployment/echo by tp']);
});

test('a Service that cannot be pointed back keeps the agent there, to be tried again', async (t) => {
  const api = new FakeApi([intercepted('echo', { gone: { service: switched(80, 9901) } })]);
  api.services = [webService()];
  api.applyService = () => Promise.reject(new Error('HTTP 403 from /api/v1/...: forbidden'));
  const logs = (await sweepAt(api, T0 + s(60))) as { msg?: string }[];
  t.deepEqual(api.applied, []);
  t.true(logs.some((l) => l.msg?.includes('failed') === true));
});
