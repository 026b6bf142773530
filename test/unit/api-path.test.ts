import test from 'ava';
import { pickPublisher, type ListedContainer, type Publisher } from '../../src/docker/publisher.js';
import { chooseApiPath, loopbackEndpoint } from '../../src/session/api-path.js';

/** A running container as the engine lists it, publishing `ports` as `[ip, host, container]`. */
function listed(
  name: string,
  ports: [string, number, number][],
  networks: Record<string, string>,
  labels: Record<string, string> = {},
): ListedContainer {
  return {
    Id: `${name}-id`,
    Names: [`/${name}`],
    Labels: labels,
    Ports: ports.map(([IP, PublicPort, PrivatePort]) => ({
      IP,
      PublicPort,
      PrivatePort,
      Type: 'tcp',
    })),
    NetworkSettings: {
      Networks: Object.fromEntries(
        Object.entries(networks).map(([n, ip]) => [n, { IPAddress: ip, GlobalIPv6Address: '' }]),
      ),
    },
  };
}

const kind = listed(
  'kind-control-plane',
  [['127.0.0.1', 41234, 6443]],
  { kind: '172.18.0.2' },
  { 'io.x-k8s.kind.role': 'control-plane' },
);

test('the container publishing the port on 127.0.0.1 is found, with its user network and address', (t) => {
  t.deepEqual(pickPublisher([kind], 41234, '127.0.0.1'), {
    container: 'kind-control-plane',
    containerPort: 6443,
    networks: ['kind'],
    addresses: { kind: '172.18.0.2' },
    controlPlane: true,
  });
});

test('no container publishing the port means no publisher', (t) => {
  t.is(pickPublisher([kind], 6443, '127.0.0.1'), undefined);
  t.is(pickPublisher([], 41234), undefined);
});

test("a UDP port, or a binding the server's host does not reach, is not the API server", (t) => {
  const udp: ListedContainer = {
    ...kind,
    Ports: [{ IP: '127.0.0.1', PublicPort: 41234, PrivatePort: 6443, Type: 'udp' }],
  };
  t.is(pickPublisher([udp], 41234, '127.0.0.1'), undefined);
  const v6 = listed('v6', [['::1', 41234, 6443]], { kind: '172.18.0.2' });
  t.is(pickPublisher([v6], 41234, '127.0.0.1'), undefined, 'IPv4 client, IPv6 binding');
  t.is(pickPublisher([kind], 41234, '::1'), undefined, 'IPv6 client, IPv4 binding');
  const other = listed('other', [['127.0.0.2', 41234, 6443]], { kind: '172.18.0.2' });
  t.is(pickPublisher([other], 41234, '127.0.0.1'), undefined, 'another loopback address');
});

test('a port published on every address serves 127.0.0.1, 0.0.0.0 and localhost', (t) => {
  const all = listed('k3d-dev-serverlb', [['0.0.0.0', 40000, 6443]], { 'k3d-dev': '172.19.0.3' });
  for (const host of ['127.0.0.1', '0.0.0.0', 'localhost', undefined]) {
    t.like(pickPublisher([all], 40000, host), { container: 'k3d-dev-serverlb' }, String(host));
  }
  const v6all = listed('v6all', [['::', 40000, 6443]], { n: '172.19.0.4' });
  t.like(pickPublisher([v6all], 40000, '::1'), { container: 'v6all' });
  t.like(pickPublisher([v6all], 40000, '[::1]'), { container: 'v6all' });
});

test('k3d writes https://0.0.0.0:<port>, which reaches a port bound on 127.0.0.1', (t) => {
  t.like(pickPublisher([kind], 41234, '0.0.0.0'), { container: 'kind-control-plane' });
});

test('built-in networks are not offered; a publisher on the default bridge has none', (t) => {
  const c = listed('plain', [['127.0.0.1', 7000, 6443]], {
    bridge: '198.19.0.5',
    zeta: '198.19.129.2',
    alpha: '198.19.130.2',
  });
  t.like(pickPublisher([c], 7000), {
    networks: ['alpha', 'zeta'],
    addresses: { alpha: '198.19.130.2', zeta: '198.19.129.2' },
  });
  const bridged = listed('bridged', [['127.0.0.1', 7000, 6443]], { bridge: '198.19.0.5' });
  t.deepEqual(pickPublisher([bridged], 7000)?.networks, []);
});

test('an IPv6-only network gives the IPv6 address', (t) => {
  const c: ListedContainer = {
    ...kind,
    NetworkSettings: {
      Networks: { kind: { IPAddress: '', GlobalIPv6Address: 'fc00:f853:ccd:e793::2' } },
    },
  };
  t.deepEqual(pickPublisher([c], 41234)?.addresses, { kind: 'fc00:f853:ccd:e793::2' });
});

test("the engine's nulls for empty lists and maps are read as empty", (t) => {
  const c: ListedContainer = {
    Id: 'x',
    Names: ['/x'],
    Labels: null,
    Ports: null,
    NetworkSettings: { Networks: null },
  };
  t.is(pickPublisher([c], 41234), undefined);
  const noNetworks: ListedContainer = { ...kind, Labels: null, NetworkSettings: null };
  t.like(pickPublisher([noNetworks], 41234), { networks: [], controlPlane: false });
});

test('of several publishers, the one labelled as a control plane wins', (t) => {
  const plain = listed('plain', [['127.0.0.1', 41234, 8443]], { other: '172.20.0.2' });
  const k3d = listed(
    'k3d-dev-server-0',
    [['0.0.0.0', 41234, 6443]],
    { 'k3d-dev': '172.19.0.2' },
    { 'k3d.role': 'server' },
  );
  t.like(pickPublisher([plain, k3d], 41234, '127.0.0.1'), { container: 'k3d-dev-server-0' });
  t.like(pickPublisher([plain, kind], 41234, '127.0.0.1'), { container: 'kind-control-plane' });
  t.like(pickPublisher([plain], 41234, '127.0.0.1'), {
    container: 'plain',
    controlPlane: false,
  });
});

test('loopbackEndpoint gives the host and port of a server on this machine, else nothing', (t) => {
  t.deepEqual(loopbackEndpoint('https://127.0.0.1:6443'), { host: '127.0.0.1', port: 6443 });
  t.deepEqual(loopbackEndpoint('https://localhost'), { host: 'localhost', port: 443 });
  t.deepEqual(loopbackEndpoint('http://localhost'), { host: 'localhost', port: 80 });
  t.deepEqual(loopbackEndpoint('https://[::1]:8443/'), { host: '::1', port: 8443 });
  t.deepEqual(loopbackEndpoint('https://0.0.0.0:40000'), { host: '0.0.0.0', port: 40000 });
  t.is(loopbackEndpoint('https://198.18.0.10:6443'), undefined);
  t.is(loopbackEndpoint('https://api.example.test:6443'), undefined);
  t.is(loopbackEndpoint('not a url'), undefined);
});

const kindPublisher: Publisher = {
  container: 'kind-control-plane',
  containerPort: 6443,
  networks: ['kind'],
  addresses: { kind: '172.18.0.2' },
  controlPlane: true,
};

test('a loopback server published by a container on a user network: the daemon joins that network', (t) => {
  t.deepEqual(chooseApiPath('https://127.0.0.1:41234', kindPublisher), {
    path: 'network kind',
    network: 'kind',
    server: 'https://kind-control-plane:6443',
    extraHosts: ['host.docker.internal:host-gateway', 'kind-control-plane:172.18.0.2'],
  });
});

test("the server's path survives the switch to the publisher", (t) => {
  t.is(
    chooseApiPath('https://localhost:41234/k8s/clusters/dev/', kindPublisher).server,
    'https://kind-control-plane:6443/k8s/clusters/dev',
  );
});

test('without an address for the network, the publisher is reached by its name alone', (t) => {
  const route = chooseApiPath('https://127.0.0.1:41234', { ...kindPublisher, addresses: {} });
  t.like(route, { path: 'network kind', server: 'https://kind-control-plane:6443' });
  t.deepEqual(route.extraHosts, ['host.docker.internal:host-gateway']);
});

test('a loopback server without a publisher, or one on no user network, goes through the host', (t) => {
  const expected = {
    path: 'host.docker.internal',
    network: 'bridge',
    extraHosts: ['host.docker.internal:host-gateway'],
  };
  t.deepEqual(chooseApiPath('https://127.0.0.1:6443', undefined), expected);
  t.deepEqual(
    chooseApiPath('https://127.0.0.1:6443', { ...kindPublisher, networks: [] }),
    expected,
  );
});

test('a server that is not loopback is reached as named, whatever publishes its port', (t) => {
  t.deepEqual(chooseApiPath('https://198.18.0.10:6443', kindPublisher), {
    path: 'direct',
    network: 'bridge',
    extraHosts: ['host.docker.internal:host-gateway'],
  });
});
