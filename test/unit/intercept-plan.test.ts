/**
 * The pure plan of an intercept or wiretap: the HTTP filter its flags make, and which Service
 * port it takes, from workloads and Services as the API server returns them.
 */
import test from 'ava';
import {
  describeFilter,
  filterOf,
  parseHeaderFlag,
  parsePathPrefix,
  sameFilter,
} from '../../src/engage/filters.js';
import { parsePortFlag } from '../../src/engage/ports.js';
import {
  checkFilterPort,
  resolveServicePort,
  type ServicePortChoice,
  type ServicePortInput,
} from '../../src/engage/service-ports.js';
import type { Container, ServiceObject, WorkloadObject } from '../../src/engage/workload.js';
import { TpError } from '../../src/lib/errors.js';
import { ANNOTATION_ORIGINAL_TARGETS } from '../../src/lib/k8s-keys.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof TpError ? err.code : `not a TpError: ${String(err)}`;
  }
  return undefined;
};

// Filters.

test('--http-header splits at the first = and stores the name in lower case', (t) => {
  t.deepEqual(parseHeaderFlag('X-User=margret'), { name: 'x-user', value: 'margret' });
  t.deepEqual(parseHeaderFlag('x-q=a=b'), { name: 'x-q', value: 'a=b' });
  t.deepEqual(parseHeaderFlag('x-note=two words'), { name: 'x-note', value: 'two words' });
});

test('--http-header refuses what no request could match, saying how to write it', (t) => {
  for (const bad of ['x-user', '=alice', 'x user=alice', ' x-user=alice', 'x:user=a', 'x-user=']) {
    t.is(
      code(() => parseHeaderFlag(bad)),
      'HTTP_HEADER_INVALID',
      bad,
    );
  }
  for (const bad of ['x-user=a\u0001', 'x-user= alice', 'x-user=alice\t']) {
    t.is(
      code(() => parseHeaderFlag(bad)),
      'HTTP_HEADER_INVALID',
      JSON.stringify(bad),
    );
  }
  const err = t.throws(() => parseHeaderFlag('x-user'), { instanceOf: TpError });
  t.is(err.category, 'usage');
  t.regex(err.message, /^--http-header x-user: /);
  t.is(err.fix, 'Write it as --http-header name=value, e.g. --http-header x-user=alice.');
});

test('--http-path-prefix starts with / and has no spaces or control characters', (t) => {
  t.is(parsePathPrefix('/api/v1?x=1'), '/api/v1?x=1');
  for (const bad of ['api', '', '/a b', '/a\n', '/a\u007f']) {
    t.is(
      code(() => parsePathPrefix(bad)),
      'HTTP_PATH_INVALID',
      JSON.stringify(bad),
    );
  }
  const err = t.throws(() => parsePathPrefix('api'), { instanceOf: TpError });
  t.is(err.category, 'usage');
  t.truthy(err.fix);
});

test('no filter flags make no filter: the engagement takes every connection', (t) => {
  t.is(filterOf([], []), undefined);
  t.deepEqual(filterOf(['X-User=a'], []), {
    headers: [{ name: 'x-user', value: 'a' }],
    pathPrefixes: [],
  });
  t.deepEqual(filterOf(['x-user=a', 'X-USER=a'], ['/a', '/a']), {
    headers: [{ name: 'x-user', value: 'a' }],
    pathPrefixes: ['/a'],
  });
  t.is(
    code(() => filterOf([], ['nope'])),
    'HTTP_PATH_INVALID',
  );
});

test('a filter is described in Telepresence’s words, header names in their usual case', (t) => {
  t.is(describeFilter(undefined), 'all TCP connections');
  t.is(
    describeFilter({ headers: [{ name: 'x-user', value: 'margret' }], pathPrefixes: ['/api'] }),
    "HTTP requests with path-prefix /api and header 'X-User: margret'",
  );
  t.is(
    describeFilter({ headers: [{ name: 'x-user', value: 'margret' }], pathPrefixes: [] }),
    "HTTP requests with header 'X-User: margret'",
  );
  t.is(
    describeFilter({
      headers: [
        { name: 'a', value: '1' },
        { name: 'x-b-c', value: '2' },
      ],
      pathPrefixes: ['/a', '/b'],
    }),
    "HTTP requests with path-prefix /a or /b and headers 'A: 1' and 'X-B-C: 2'",
  );
  t.is(
    describeFilter({ headers: [], pathPrefixes: ['/a', '/b', '/c'] }),
    'HTTP requests with path-prefix /a, /b or /c',
  );
});

test('filters are the same when they hold the same headers and prefixes, in any order', (t) => {
  const a = filterOf(['x-a=1', 'x-b=2'], ['/p', '/q']);
  const b = filterOf(['X-B=2', 'x-a=1'], ['/q', '/p']);
  t.true(sameFilter(a, b));
  t.true(sameFilter(undefined, undefined));
  t.false(sameFilter(a, undefined));
  t.false(sameFilter(a, filterOf(['x-a=1'], ['/p', '/q'])));
  t.false(sameFilter(a, filterOf(['x-a=1', 'x-b=3'], ['/p', '/q'])));
  t.false(sameFilter(filterOf([], ['/p']), filterOf([], ['/p', '/q'])));
});

// Service ports, modelled on the lab's samples.

const web: Container = {
  name: 'web',
  image: 'samples:1',
  ports: [
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
  ],
};

function workload(containers: Container[] = [web], labels = { app: 'web' }): WorkloadObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'samples' },
    spec: {
      replicas: 1,
      template: { metadata: { labels: { ...labels, tier: 'front' } }, spec: { containers } },
    },
  };
}

function service(
  name: string,
  ports: NonNullable<ServiceObject['spec']['ports']>,
  /** null: none, as a Service whose endpoints are managed by hand. */
  selector: Record<string, string> | null = { app: 'web' },
): ServiceObject {
  return {
    metadata: { name, namespace: 'samples' },
    spec: { ...(selector === null ? {} : { selector }), ports },
  };
}

const webSvc = service('web', [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);

const input = (over: Partial<ServicePortInput> = {}): ServicePortInput => ({
  workload: workload(),
  container: web,
  services: [webSvc],
  ...over,
});

test('the only Service port that reaches the container is taken, to the container port locally', (t) => {
  t.deepEqual(resolveServicePort(input()), {
    service: 'web',
    port: 80,
    protocol: 'TCP',
    portName: 'http',
    targetPort: 'http',
    containerPort: 8080,
    local: 8080,
  } satisfies ServicePortChoice);
  const local = resolveServicePort(input({ port: parsePortFlag('3000') }));
  t.is(local.local, 3000);
});

test('a Service selects the workload when its selector is a subset of the pod labels', (t) => {
  const services = [
    service('other', [{ port: 80, targetPort: 8080 }], { app: 'other' }),
    service('manual', [{ port: 80, targetPort: 8080 }], null),
    service('empty', [{ port: 80, targetPort: 8080 }], {}),
    service('web', [{ port: 81, targetPort: 8080 }], { app: 'web', tier: 'front' }),
  ];
  t.like(resolveServicePort(input({ services })), {
    service: 'web',
    port: 81,
    containerPort: 8080,
  });
});

test('only TCP ports whose targetPort reaches the target container are candidates', (t) => {
  const sidecar: Container = { name: 'proxy', ports: [{ containerPort: 15001 }] };
  const w = workload([web, sidecar]);
  const services = [
    service('web', [
      { name: 'dns', port: 53, targetPort: 8080, protocol: 'UDP' },
      { name: 'mesh', port: 15001, targetPort: 15001 },
      { name: 'named-elsewhere', port: 81, targetPort: 'admin' },
      { name: 'http', port: 80, targetPort: 8080 },
    ]),
  ];
  t.like(resolveServicePort({ workload: w, container: web, services }), {
    port: 80,
    containerPort: 8080,
  });
});

test('a numeric targetPort the container does not declare counts when it declares none or is alone', (t) => {
  const services = [service('web', [{ port: 80, targetPort: 3000 }])];
  // Alone in the pod (the tp-agent sidecar aside), with ports declared.
  const alone = workload([web, { name: 'tp-agent' }]);
  t.like(resolveServicePort({ workload: alone, container: web, services }), {
    containerPort: 3000,
    local: 3000,
  });
  // Beside another container, declaring no ports.
  const bare: Container = { name: 'app' };
  const two = workload([bare, { name: 'log' }]);
  t.like(resolveServicePort({ workload: two, container: bare, services }), { containerPort: 3000 });
  // Beside another container, declaring others: the port is not known to be the app's.
  t.is(
    code(() =>
      resolveServicePort({ workload: workload([web, { name: 'log' }]), container: web, services }),
    ),
    'NO_SERVICE_PORT',
  );
});

test('an absent targetPort is the port itself', (t) => {
  const services = [service('web', [{ port: 8080 }])];
  t.like(resolveServicePort(input({ services })), { targetPort: 8080, containerPort: 8080 });
});

test('a port another session switched to the agent is resolved by its original targetPort', (t) => {
  const switched: ServiceObject = {
    ...webSvc,
    metadata: {
      ...webSvc.metadata,
      annotations: { [ANNOTATION_ORIGINAL_TARGETS]: JSON.stringify({ '80/TCP': 'http' }) },
    },
    spec: {
      ...webSvc.spec,
      ports: [{ name: 'http', port: 80, targetPort: 9901, protocol: 'TCP' }],
    },
  };
  t.like(resolveServicePort(input({ services: [switched] })), {
    targetPort: 'http',
    containerPort: 8080,
  });
});

test('--port remote names the Service port first, else the targetPort or container port', (t) => {
  const services = [
    service('web', [
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'metrics', port: 9091, targetPort: 9090 },
      { name: 'alt', port: 8080, targetPort: 9090 },
    ]),
  ];
  const pick = (flag: string): ServicePortChoice =>
    resolveServicePort(input({ services, port: parsePortFlag(flag) }));
  t.like(pick('3000:80'), { port: 80, local: 3000 });
  t.like(pick('3000:metrics'), { port: 9091 });
  // 8080 is a Service port (alt) and http's container port: the Service port wins.
  t.like(pick('3000:8080'), { port: 8080, containerPort: 9090 });
  t.like(pick('3000:http'), { port: 80 });
  // By the target alone.
  const byTarget = [service('web', [{ name: 'web', port: 80, targetPort: 'http' }])];
  t.like(resolveServicePort(input({ services: byTarget, port: parsePortFlag('1:http') })), {
    port: 80,
  });
  t.like(resolveServicePort(input({ services: byTarget, port: parsePortFlag('1:8080') })), {
    port: 80,
  });
});

test('a remote that names no candidate lists them', (t) => {
  const err = t.throws(() => resolveServicePort(input({ port: parsePortFlag('3000:grpc') })), {
    instanceOf: TpError,
  });
  t.is(err.code, 'PORT_UNKNOWN');
  t.is(err.category, 'usage');
  t.regex(err.message, /web:80 \(http\) → http/);
});

test('several candidates ask for --port local:remote or --service, listing them', (t) => {
  const services = [
    webSvc,
    service('web-headless', [{ port: 8080, targetPort: 8080 }], { app: 'web' }),
  ];
  const err = t.throws(() => resolveServicePort(input({ services })), { instanceOf: TpError });
  t.is(err.code, 'PORT_AMBIGUOUS');
  t.regex(err.message, /web:80 \(http\) → http, web-headless:8080 → 8080/);
  t.regex(err.fix, /--port local:remote/);
  t.regex(err.fix, /--service/);
  t.like(resolveServicePort(input({ services, service: 'web-headless' })), {
    service: 'web-headless',
  });
  t.like(resolveServicePort(input({ services, port: parsePortFlag('1:80') })), { service: 'web' });
});

test('--service must exist and select the workload', (t) => {
  const other = service('db', [{ port: 5432 }], { app: 'db' });
  const unknown = t.throws(
    () => resolveServicePort(input({ services: [webSvc, other], service: 'nope' })),
    { instanceOf: TpError },
  );
  t.is(unknown.code, 'SERVICE_UNKNOWN');
  t.regex(unknown.message, /select deployment\/web: web\./);
  const notSelecting = t.throws(
    () => resolveServicePort(input({ services: [webSvc, other], service: 'db' })),
    { instanceOf: TpError },
  );
  t.is(notSelecting.code, 'SERVICE_NOT_SELECTING');
  t.regex(notSelecting.message, /selector is app=db, their labels are app=web,tier=front/);
});

test('a workload no Service selects points to tp replace, which takes container ports', (t) => {
  const err = t.throws(
    () => resolveServicePort(input({ services: [service('db', [{ port: 5432 }], { app: 'db' })] })),
    { instanceOf: TpError },
  );
  t.is(err.code, 'NO_SERVICE');
  t.regex(err.message, /^deployment\/web has no Service .*takes a Service's traffic/);
  t.regex(err.fix, /tp replace web --port local:containerPort/);
});

test('--port /udp is refused: a Service port is taken over TCP', (t) => {
  t.is(
    code(() => resolveServicePort(input({ port: parsePortFlag('53:53/udp') }))),
    'PORT_NOT_TCP',
  );
});

test('a filter on a port declared as not HTTP is refused; HTTP and undeclared ports take one', (t) => {
  const filter = filterOf(['x-user=a'], []);
  const choice = (over: Partial<ServicePortChoice>): ServicePortChoice => ({
    service: 'db',
    port: 6379,
    protocol: 'TCP',
    targetPort: 6379,
    containerPort: 6379,
    local: 6379,
    ...over,
  });
  const redis = (): void => {
    checkFilterPort(choice({ portName: 'redis' }), filter);
  };
  const err = t.throws(redis, { instanceOf: TpError });
  t.is(err.code, 'FILTER_NOT_HTTP');
  t.is(err.category, 'usage');
  t.regex(err.message, /db:6379 speaks redis/);
  t.regex(err.fix, /all TCP connections/);
  t.is(
    code(() => {
      checkFilterPort(choice({ portName: 'http', appProtocol: 'kubernetes.io/wss' }), filter);
    }),
    'FILTER_NOT_HTTP',
  );
  t.notThrows(() => {
    checkFilterPort(choice({ portName: 'redis' }), undefined);
  });
  t.notThrows(() => {
    checkFilterPort(choice({ portName: 'http-api' }), filter);
  });
  t.notThrows(() => {
    checkFilterPort(choice({ appProtocol: 'kubernetes.io/h2c' }), filter);
  });
  t.notThrows(() => {
    checkFilterPort(choice({}), filter);
  });
});
