import test from 'ava';
import { renameOwners, reverseAddress, routeName } from '../../src/daemon/dns/policy.js';

const names = {
  domain: 'cluster.local',
  namespace: 'samples',
  known: () => new Set(['samples', 'dev', 'kube-system', 'store']),
  isClusterAddress: (ip: string) => ip.startsWith('198.18.'),
};

test('names under the cluster domain, and the domain itself, are the cluster’s', (t) => {
  for (const n of ['echo.samples.svc.cluster.local', 'cluster.local', 'x.y.pod.cluster.local']) {
    t.deepEqual(routeName(n, names), { to: 'cluster' }, n);
  }
  t.deepEqual(routeName('cluster.localhost', names), { to: 'upstream' });
});

test('one label is tried in the connected namespace, then upstream', (t) => {
  t.deepEqual(routeName('echo', names), {
    to: 'expand',
    candidates: ['echo.samples.svc.cluster.local'],
  });
});

test('two labels are tried as a headless pod, then as a service in a namespace', (t) => {
  t.deepEqual(routeName('store-0.store', names), {
    to: 'expand',
    candidates: ['store-0.store.samples.svc.cluster.local', 'store-0.store.svc.cluster.local'],
  });
});

test('a two-label name ending in a public top-level domain goes upstream unless it is a namespace', (t) => {
  for (const n of ['example.com', 'golang.org', 'foo.io']) {
    t.deepEqual(routeName(n, names), { to: 'upstream' }, n);
  }
  t.is(routeName('api.dev', names).to, 'expand');
  t.is(routeName('web.samples', names).to, 'expand');
  t.is(routeName('store-0.store', names).to, 'expand');
  t.is(routeName('store-0.store', { ...names, known: () => new Set(['samples']) }).to, 'upstream');
});

test('svc-qualified names get the cluster domain; longer names go upstream', (t) => {
  t.deepEqual(routeName('echo.samples.svc', names), {
    to: 'expand',
    candidates: ['echo.samples.svc.cluster.local'],
  });
  t.deepEqual(routeName('www.example.com', names), { to: 'upstream' });
});

test('reverse names: whole addresses in cluster ranges are the cluster’s; zones and others are not', (t) => {
  t.deepEqual(routeName('20.128.18.198.in-addr.arpa', names), { to: 'cluster' });
  t.deepEqual(routeName('1.0.19.198.in-addr.arpa', names), { to: 'upstream' });
  t.deepEqual(routeName('128.18.198.in-addr.arpa', names), { to: 'upstream' });
  t.is(reverseAddress('20.128.18.198.in-addr.arpa'), '198.18.128.20');
  t.is(reverseAddress('18.198.in-addr.arpa'), '');
  t.is(reverseAddress('echo.samples'), undefined);
  const v6 = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.2.ip6.arpa';
  t.is(reverseAddress(v6), '2001:0002:0000:0000:0000:0000:0000:0001');
});

test('renameOwners gives records of the expanded name the asked name and keeps others', (t) => {
  const records = [
    { name: 'Echo.samples.svc.cluster.local', data: 'x' },
    { name: 'target.example.test', data: 'y' },
  ];
  t.deepEqual(
    renameOwners(records, 'echo.samples.svc.cluster.local', 'Echo').map((r) => r.name),
    ['Echo', 'target.example.test'],
  );
});
