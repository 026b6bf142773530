/**
 * A Service port pointed at the agent and back: the apply configurations, and what they leave
 * on a Service under a small model of server-side apply's field ownership.
 */
import test from 'ava';
import {
  ownedTargetPorts,
  planServiceSwitch,
  readOriginalTargets,
  serviceRestore,
  switchApply,
  type ServiceApply,
} from '../../src/engage/service-switch.js';
import type { ServiceObject } from '../../src/engage/workload.js';
import {
  ANNOTATION_ORIGINAL_TARGETS,
  FIELD_MANAGER,
  FIELD_MANAGER_RESTORED,
} from '../../src/lib/k8s-keys.js';

const web = (annotations?: Record<string, string>): ServiceObject => ({
  metadata: {
    name: 'web',
    namespace: 'samples',
    ...(annotations === undefined ? {} : { annotations }),
  },
  spec: {
    selector: { app: 'web' },
    ports: [
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'metrics', port: 9091, targetPort: 9090, protocol: 'TCP' },
      { name: 'grpc', port: 50051, protocol: 'TCP' },
      { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
    ],
  },
});

const originals = (o: Record<string, number | string>): Record<string, string> => ({
  [ANNOTATION_ORIGINAL_TARGETS]: JSON.stringify(o),
});

test('a switch points the port at the agent and remembers its targetPort as it was', (t) => {
  t.deepEqual(
    switchApply(web(), [
      { port: 80, protocol: 'TCP', listen: 9901 },
      { port: 50051, protocol: 'TCP', listen: 9902 },
    ]),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'web',
        namespace: 'samples',
        // An absent targetPort is the port itself.
        annotations: originals({ '80/TCP': 'http', '50051/TCP': 50051 }),
      },
      spec: {
        ports: [
          { port: 80, protocol: 'TCP', targetPort: 9901 },
          { port: 50051, protocol: 'TCP', targetPort: 9902 },
        ],
      },
    } satisfies ServiceApply,
  );
});

test('a port switched before keeps its first original, not the agent port it points at now', (t) => {
  const switched = web(originals({ '80/TCP': 'http' }));
  const ports = switched.spec.ports ?? [];
  ports[0] = { ...ports[0], port: 80, targetPort: 9901 };
  const apply = switchApply(switched, [
    { port: 80, protocol: 'TCP', listen: 9901 },
    { port: 9091, protocol: 'TCP', listen: 9902 },
  ]);
  t.deepEqual(apply.metadata.annotations, originals({ '80/TCP': 'http', '9091/TCP': 9090 }));
});

test('a port the Service does not have is not switched, nor a protocol it does not serve', (t) => {
  const apply = switchApply(web(), [
    { port: 8080, protocol: 'TCP', listen: 9901 },
    { port: 80, protocol: 'UDP', listen: 9901 },
  ]);
  t.deepEqual(apply, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'samples' },
  });
});

test('a restore puts every switched port back and states no annotation, then hands over the values', (t) => {
  const plan = serviceRestore(web(originals({ '80/TCP': 'http', '50051/TCP': 50051 })));
  const expected: ServiceApply = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'samples' },
    spec: {
      ports: [
        { port: 80, protocol: 'TCP', targetPort: 'http' },
        { port: 50051, protocol: 'TCP', targetPort: 50051 },
      ],
    },
  };
  t.deepEqual(plan, { apply: expected, handover: expected });
  t.deepEqual(switchApply(web(originals({ '80/TCP': 'http', '50051/TCP': 50051 })), []), expected);
});

test('a Service tp switched nothing of has nothing to restore', (t) => {
  t.is(serviceRestore(web()), undefined);
});

test('a malformed annotation counts as no originals, and a restore still removes it', (t) => {
  for (const raw of [
    '{',
    '[]',
    'null',
    '"x"',
    JSON.stringify({ '80/TCP': -1, x: 1, '81/TCP': '' }),
  ]) {
    t.deepEqual(readOriginalTargets(web({ [ANNOTATION_ORIGINAL_TARGETS]: raw })), {}, raw);
  }
  t.deepEqual(readOriginalTargets(web(originals({ '80/TCP': 'http', '9091/TCP': 9090, bad: 1 }))), {
    '80/TCP': 'http',
    '9091/TCP': 9090,
  });
  t.deepEqual(serviceRestore(web({ [ANNOTATION_ORIGINAL_TARGETS]: '{' })), {
    apply: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'samples' },
    },
  });
});

test('a port the Service no longer has is not brought back by a restore', (t) => {
  const plan = serviceRestore(web(originals({ '80/TCP': 'http', '8443/TCP': 'https' })));
  t.deepEqual(plan?.apply.spec?.ports, [{ port: 80, protocol: 'TCP', targetPort: 'http' }]);
});

test('ports no longer switched go back while the others stay switched', (t) => {
  const plan = planServiceSwitch(web(originals({ '80/TCP': 'http', '9091/TCP': 9090 })), [
    { port: 9091, protocol: 'TCP', listen: 9902 },
  ]);
  t.deepEqual(plan.apply, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'samples', annotations: originals({ '9091/TCP': 9090 }) },
    spec: {
      ports: [
        { port: 9091, protocol: 'TCP', targetPort: 9902 },
        { port: 80, protocol: 'TCP', targetPort: 'http' },
      ],
    },
  });
  t.deepEqual(plan.handover?.spec?.ports, [{ port: 80, protocol: 'TCP', targetPort: 'http' }]);
  t.is(plan.handover?.metadata.annotations, undefined);
});

test('the restored values tp-restored owns are read from managedFields', (t) => {
  const svc: ServiceObject = {
    ...web(),
    metadata: {
      ...web().metadata,
      managedFields: [
        {
          manager: FIELD_MANAGER_RESTORED,
          operation: 'Apply',
          fieldsV1: {
            'f:spec': {
              'f:ports': {
                'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:targetPort': {} },
                'k:{"port":9091,"protocol":"TCP"}': { '.': {}, 'f:port': {} },
                'k:{broken': { 'f:targetPort': {} },
              },
            },
          },
        },
        {
          manager: FIELD_MANAGER_RESTORED,
          operation: 'Update',
          fieldsV1: {
            'f:spec': { 'f:ports': { 'k:{"port":53,"protocol":"UDP"}': { 'f:targetPort': {} } } },
          },
        },
        { manager: FIELD_MANAGER, operation: 'Apply', fieldsV1: null },
      ],
    },
  };
  t.deepEqual(ownedTargetPorts(svc, FIELD_MANAGER_RESTORED), ['80/TCP']);
  t.deepEqual(ownedTargetPorts(svc, FIELD_MANAGER), []);
});

/**
 * A Service under server-side apply, as far as targetPorts and the annotation go: each field's
 * owners; a forced apply of another value takes a field from its owners, and a field whose
 * last owner stops stating it is removed (a targetPort then defaults to the port).
 */
class ApplyModel {
  readonly owners = new Map<string, Set<string>>();
  constructor(public svc: ServiceObject) {
    for (const p of svc.spec.ports ?? []) {
      // As the API server defaults it.
      p.targetPort ??= p.port;
      this.owners.set(`${p.port}/${p.protocol ?? 'TCP'}`, new Set(['kubectl']));
    }
  }

  apply(config: ServiceApply, manager: string): void {
    const stated = new Map<string, number | string>();
    for (const p of config.spec?.ports ?? []) stated.set(`${p.port}/${p.protocol}`, p.targetPort);
    const annotation = config.metadata.annotations?.[ANNOTATION_ORIGINAL_TARGETS];
    if (annotation !== undefined) stated.set('annotation', annotation);
    for (const [field, value] of stated) {
      const owners = this.owners.get(field) ?? new Set<string>();
      if (this.get(field) !== value) owners.clear();
      owners.add(manager);
      this.owners.set(field, owners);
      this.set(field, value);
    }
    for (const [field, owners] of this.owners) {
      if (stated.has(field) || !owners.delete(manager) || owners.size > 0) continue;
      this.set(field, undefined);
    }
    this.svc.metadata.managedFields = [FIELD_MANAGER, FIELD_MANAGER_RESTORED].map((m) => ({
      manager: m,
      operation: 'Apply',
      fieldsV1: {
        'f:spec': {
          'f:ports': Object.fromEntries(
            [...this.owners]
              .filter(([f, o]) => f !== 'annotation' && o.has(m))
              .map(([f]) => {
                const [port, protocol] = f.split('/');
                return [
                  `k:${JSON.stringify({ port: Number(port), protocol })}`,
                  { 'f:targetPort': {} },
                ];
              }),
          ),
        },
      },
    }));
  }

  targetPorts(): Record<string, number | string | undefined> {
    return Object.fromEntries((this.svc.spec.ports ?? []).map((p) => [p.port, p.targetPort]));
  }

  private get(field: string): number | string | undefined {
    if (field === 'annotation') return this.svc.metadata.annotations?.[ANNOTATION_ORIGINAL_TARGETS];
    return this.port(field)?.targetPort;
  }

  private set(field: string, value: number | string | undefined): void {
    if (field === 'annotation') {
      const { [ANNOTATION_ORIGINAL_TARGETS]: _, ...rest } = this.svc.metadata.annotations ?? {};
      this.svc.metadata.annotations =
        value === undefined ? rest : { ...rest, [ANNOTATION_ORIGINAL_TARGETS]: String(value) };
      return;
    }
    const p = this.port(field);
    if (p !== undefined) p.targetPort = value ?? p.port;
  }

  private port(field: string) {
    return this.svc.spec.ports?.find((p) => `${p.port}/${p.protocol ?? 'TCP'}` === field);
  }
}

function run(model: ApplyModel, plan: ReturnType<typeof planServiceSwitch> | undefined): void {
  if (plan === undefined) return;
  model.apply(plan.apply, FIELD_MANAGER);
  if (plan.handover !== undefined) model.apply(plan.handover, FIELD_MANAGER_RESTORED);
}

test('engagements of one port, then of another, leave every targetPort as it was', (t) => {
  const model = new ApplyModel(web());
  const before = model.targetPorts();
  run(model, planServiceSwitch(model.svc, [{ port: 80, protocol: 'TCP', listen: 9901 }]));
  t.like(model.targetPorts(), { 80: 9901 });
  run(model, serviceRestore(model.svc));
  t.deepEqual(model.targetPorts(), before);
  // Now another port: tp no longer states port 80, which only tp-restored keeps then.
  run(model, planServiceSwitch(model.svc, [{ port: 9091, protocol: 'TCP', listen: 9902 }]));
  t.like(model.targetPorts(), { 80: 'http', 9091: 9902 });
  run(model, serviceRestore(model.svc));
  t.deepEqual(model.targetPorts(), before);
  t.is(model.svc.metadata.annotations?.[ANNOTATION_ORIGINAL_TARGETS], undefined);
  // A third round, both ports at once, one going back before the other.
  run(
    model,
    planServiceSwitch(model.svc, [
      { port: 80, protocol: 'TCP', listen: 9901 },
      { port: 50051, protocol: 'TCP', listen: 9903 },
    ]),
  );
  run(model, planServiceSwitch(model.svc, [{ port: 50051, protocol: 'TCP', listen: 9903 }]));
  t.like(model.targetPorts(), { 80: 'http', 50051: 9903 });
  run(model, serviceRestore(model.svc));
  t.deepEqual(model.targetPorts(), before);
});

test('a handover of the last restore alone would lose a port restored before', (t) => {
  // Why tp-restored keeps stating what it restored: the same rounds, its hand-over cut down.
  const model = new ApplyModel(web());
  const cut = (plan: ReturnType<typeof planServiceSwitch> | undefined) =>
    plan?.handover === undefined ? plan : { apply: plan.apply, handover: plan.apply };
  run(model, cut(planServiceSwitch(model.svc, [{ port: 80, protocol: 'TCP', listen: 9901 }])));
  run(model, cut(serviceRestore(model.svc)));
  run(model, cut(planServiceSwitch(model.svc, [{ port: 9091, protocol: 'TCP', listen: 9902 }])));
  run(model, cut(serviceRestore(model.svc)));
  t.like(model.targetPorts(), { 80: 80 });
});
