import test from 'ava';
import { parsePublish } from '../../src/docker/publish.js';
import { parseRunArgs } from '../../src/docker/run-args.js';
import { TpError } from '../../src/lib/errors.js';

test('-p values are read as docker run reads them', (t) => {
  t.deepEqual(parsePublish('8080:80'), [
    { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: '8080' },
  ]);
  t.deepEqual(parsePublish('127.0.0.1:8080:80/udp'), [
    { containerPort: 80, protocol: 'udp', hostIp: '127.0.0.1', hostPort: '8080' },
  ]);
  t.deepEqual(parsePublish('80'), [
    { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: '' },
  ]);
  t.deepEqual(parsePublish('127.0.0.1::80'), [
    { containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: '' },
  ]);
  t.deepEqual(parsePublish('[::1]:8080:80/TCP'), [
    { containerPort: 80, protocol: 'tcp', hostIp: '::1', hostPort: '8080' },
  ]);
});

test('port ranges publish port by port; one container port takes a free port of a host range', (t) => {
  t.deepEqual(
    parsePublish('9000-9001:8000-8001').map((b) => [b.hostPort, b.containerPort]),
    [
      ['9000', 8000],
      ['9001', 8001],
    ],
  );
  t.deepEqual(
    parsePublish('8000-8001').map((b) => [b.hostPort, b.containerPort]),
    [
      ['', 8000],
      ['', 8001],
    ],
  );
  t.deepEqual(parsePublish('9000-9010:80'), [
    { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: '9000-9010' },
  ]);
});

test('-p values Docker would refuse, and SCTP, are usage errors before anything runs', (t) => {
  for (const bad of [
    '',
    '8080:',
    'x:80',
    '0:80',
    '8080:70000',
    'nohost:8080:80',
    '1.2.3.4:5:6:7',
    '[::1]:80',
    '9000-9002:8000-8001',
    '81-80',
    '80/sctp',
    '80/icmp',
  ]) {
    const err = t.throws(() => parsePublish(bad), { instanceOf: TpError }, bad);
    t.like(err, { code: 'DOCKER_RUN_PUBLISH', category: 'usage' }, bad);
  }
  t.like(
    t.throws(() => parseRunArgs(['-p', '80/sctp', 'img'])),
    { code: 'DOCKER_RUN_PUBLISH' },
  );
});
