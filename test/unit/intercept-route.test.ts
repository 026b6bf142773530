/**
 * The pure parts of intercept and wiretap: which session a request goes to, what a port's
 * declaration says it speaks, and the plan's sidecar, proxy ports and conflicts.
 */
import test from 'ava';
import type { AgentConfig, HttpFilter, Tap } from '../../src/contract/agent.js';
import { declaredProtocol } from '../../src/contract/app-protocol.js';
import { orderIntercepts, route } from '../../agent/proxy/route.js';
import {
  PROXY_PORT_BASE,
  planEngagement,
  planLeave,
  SIDECAR,
  type EngageRequest,
  type TapRequest,
} from '../../src/engage/plan.js';
import type { Container, WorkloadObject } from '../../src/engage/workload.js';
import { TpError } from '../../src/lib/errors.js';

const header = (value: string): HttpFilter => ({
  headers: [{ name: 'x-user', value }],
  pathPrefixes: [],
});
const tap = (session: string, filter?: HttpFilter): Tap => ({
  session,
  mode: 'intercept',
  target: 8080,
  ...(filter === undefined ? {} : { filter }),
});
const view = (path: string, headers: Record<string, string> = {}) => ({
  path,
  header: (name: string) => headers[name],
});

test('header-based intercepts are asked before path-only ones, whatever order they came in', (t) => {
  const admin = tap('path', { headers: [], pathPrefixes: ['/admin'] });
  const alice = tap('alice', header('alice'));
  const ordered = orderIntercepts([admin, alice]);
  t.deepEqual(
    ordered.map((x) => x.session),
    ['alice', 'path'],
  );
  t.is(route(ordered, [], view('/admin/x', { 'x-user': 'alice' })).intercept?.session, 'alice');
  t.is(route(ordered, [], view('/admin/x', { 'x-user': 'bob' })).intercept?.session, 'path');
  t.is(route(ordered, [], view('/other', { 'x-user': 'bob' })).intercept, undefined);
});

test('every header of a filter must match, and any one of its path prefixes', (t) => {
  const both = tap('s', {
    headers: [
      { name: 'x-user', value: 'alice' },
      { name: 'x-env', value: 'dev' },
    ],
    pathPrefixes: ['/api', '/v2'],
  });
  const go = (path: string, h: Record<string, string>): string | undefined =>
    route([both], [], view(path, h)).intercept?.session;
  t.is(go('/v2/x', { 'x-user': 'alice', 'x-env': 'dev' }), 's');
  t.is(go('/api', { 'x-user': 'alice', 'x-env': 'dev' }), 's');
  t.is(go('/api', { 'x-user': 'alice' }), undefined);
  t.is(go('/web', { 'x-user': 'alice', 'x-env': 'dev' }), undefined);
});

test('every matching wiretap gets a copy, whether or not an intercept takes the request', (t) => {
  const wiretaps: Tap[] = [
    { ...tap('w1'), mode: 'wiretap' },
    { ...tap('w2', header('bob')), mode: 'wiretap' },
  ];
  const r = route([tap('alice', header('alice'))], wiretaps, view('/', { 'x-user': 'alice' }));
  t.is(r.intercept?.session, 'alice');
  t.deepEqual(
    r.wiretaps.map((w) => w.session),
    ['w1'],
  );
});

test("a port's protocol comes from its appProtocol, else its name; encrypted ones are opaque", (t) => {
  t.is(declaredProtocol('kubernetes.io/h2c'), 'h2');
  t.is(declaredProtocol('grpc'), 'h2');
  t.is(declaredProtocol('http-api'), 'http');
  t.is(declaredProtocol('grpc-web'), 'http');
  t.is(declaredProtocol('https'), 'tcp');
  t.is(declaredProtocol('tcp-db'), 'tcp');
  t.is(declaredProtocol('redis'), 'tcp');
  t.is(declaredProtocol('api'), undefined);
  t.is(declaredProtocol('example.com/custom'), undefined);
  t.is(declaredProtocol(undefined), undefined);
});

const web: Container = {
  name: 'web',
  image: 'samples:1',
  ports: [{ name: 'http', containerPort: 8080 }],
  volumeMounts: [{ name: 'data', mountPath: '/data' }],
};
const workload = (annotations?: Record<string, string>): WorkloadObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace: 'ns',
    ...(annotations === undefined ? {} : { annotations }),
  },
  spec: { replicas: 1, template: { spec: { containers: [web] } } },
});
const tapRequest = (filter?: HttpFilter): TapRequest => ({
  service: 'web',
  servicePort: 80,
  containerPort: 8080,
  local: 8080,
  portName: 'http',
  appProtocol: 'http',
  ...(filter === undefined ? {} : { filter }),
});
const request = (
  session: string,
  mode: EngageRequest['mode'],
  filter?: HttpFilter,
): EngageRequest => ({
  mode,
  session,
  ports: [],
  agentImage: 'agent:1',
  now: '2026-11-28T00:00:00Z',
  ...(mode === 'intercept' || mode === 'wiretap' ? { tap: tapRequest(filter) } : {}),
});
const sidecarOf = (plan: ReturnType<typeof planEngagement>): Record<string, unknown> => {
  const c = plan.apply.spec?.template.spec.containers.find((x) => x.name === SIDECAR);
  if (c === undefined) throw new Error('no sidecar');
  return c;
};
const configOf = (c: Record<string, unknown>): AgentConfig =>
  JSON.parse((c.args as string[])[1] ?? '{}') as AgentConfig;

/** The workload as it is once a plan is applied: only its annotations matter to the next plan. */
const after = (plan: ReturnType<typeof planEngagement>): WorkloadObject =>
  workload(plan.apply.metadata.annotations);

test('an intercept adds a sidecar that proxies the port, with the mounts writable, and records the switch', (t) => {
  const plan = planEngagement(workload(), request('s1', 'intercept', header('alice')));
  const sidecar = sidecarOf(plan);
  t.deepEqual(configOf(sidecar).proxies, [
    { listen: PROXY_PORT_BASE, target: 8080, appProtocol: 'http' },
  ]);
  t.deepEqual(configOf(sidecar).mounts, [{ path: '/data', readOnly: false }]);
  t.deepEqual(sidecar.ports, [{ containerPort: PROXY_PORT_BASE, protocol: 'TCP' }]);
  t.deepEqual(plan.engagements.s1?.service, {
    name: 'web',
    port: 80,
    protocol: 'TCP',
    listen: PROXY_PORT_BASE,
  });
  t.deepEqual(plan.ports, [{ port: 8080, protocol: 'TCP', local: 8080, name: 'http' }]);
});

test('a wiretap alone keeps the mounts read-only', (t) => {
  const plan = planEngagement(workload(), request('s1', 'wiretap'));
  t.deepEqual(configOf(sidecarOf(plan)).mounts, [{ path: '/data', readOnly: true }]);
});

test('a second session on the same port shares the agent and its port; the first to leave restores nothing', (t) => {
  const first = planEngagement(workload(), request('s1', 'intercept', header('alice')));
  const second = planEngagement(after(first), request('s2', 'intercept', header('bob')));
  t.is(second.engagements.s2?.service?.listen, PROXY_PORT_BASE);
  t.deepEqual(sidecarOf(second), sidecarOf(first));
  const left = planLeave(after(second), 's1');
  t.deepEqual(Object.keys(left?.remaining ?? {}), ['s2']);
  t.is(left?.handover, undefined);
});

test('intercepts that would take the same requests are refused, naming who holds the port', (t) => {
  const held = after(planEngagement(workload(), request('s1', 'intercept', header('alice'))));
  const refuse = (r: EngageRequest, message: RegExp): void => {
    const err = t.throws(() => planEngagement(held, r), { instanceOf: TpError });
    t.is(err.code, 'INTERCEPT_CONFLICT');
    t.regex(err.message, message);
  };
  refuse(
    request('s2', 'intercept', header('alice')),
    /session s1 already intercepts .* same filter/,
  );
  refuse(request('s2', 'intercept'), /session s1 intercepts some requests/);
  const all = after(planEngagement(workload(), request('s1', 'intercept')));
  t.throws(() => planEngagement(all, request('s2', 'intercept', header('bob'))), {
    message: /session s1 intercepts every connection/,
  });
  // Copies take nothing away: any number of wiretaps may join.
  t.notThrows(() => planEngagement(held, request('s2', 'wiretap', header('alice'))));
});

test('a replace and an intercept of one workload are refused together, either way round', (t) => {
  const intercepted = after(
    planEngagement(workload(), request('s1', 'intercept', header('alice'))),
  );
  t.throws(() => planEngagement(intercepted, request('s2', 'replace')), {
    message: /engaged by session s1 .*intercept/,
  });
  const replaced = after(planEngagement(workload(), request('s1', 'replace')));
  t.throws(() => planEngagement(replaced, request('s2', 'intercept', header('bob'))), {
    message: /replaced by session s1/,
  });
});
