import test from 'ava';
import { parseRunArgs } from '../../src/docker/run-args.js';
import { TpError } from '../../src/lib/errors.js';

test('flags, the image and the command are told apart as docker run does', (t) => {
  const r = parseRunArgs([
    '-it',
    '--rm',
    '-e',
    'A=1',
    '--name=web',
    '-v',
    '/x:/y',
    'my/app:1',
    'serve',
    '--port',
    '80',
  ]);
  t.deepEqual(r.flags, ['-i', '-t', '--rm', '-e', 'A=1', '--name=web', '-v', '/x:/y']);
  t.is(r.image, 'my/app:1');
  t.deepEqual(r.command, ['serve', '--port', '80']);
  t.like(r, { name: 'web', tty: true, rm: true });
});

test('-p values are set aside for tp to publish, in every spelling', (t) => {
  const r = parseRunArgs([
    '-p',
    '8080:80',
    '-p9090:90',
    '--publish=7070:70',
    '--publish',
    '6060:60/udp',
    'img',
  ]);
  t.deepEqual(r.publish, ['8080:80', '9090:90', '7070:70', '6060:60/udp']);
  t.deepEqual(r.flags, []);
  t.is(r.image, 'img');
});

test('a value-taking short flag at the end of a group takes the next argument', (t) => {
  const r = parseRunArgs(['-itu', '1000', '--entrypoint', 'sh', 'img', '-c', 'echo hi']);
  t.deepEqual(r.flags, ['-i', '-t', '-u', '1000', '--entrypoint', 'sh']);
  t.deepEqual(r.command, ['-c', 'echo hi']);
});

test('flags that clash with the shared network namespace are refused, naming why', (t) => {
  for (const args of [
    ['--network', 'host', 'img'],
    ['--net=bridge', 'img'],
    ['-d', 'img'],
    ['-h', 'box', 'img'],
    ['--dns', '1.1.1.1', 'img'],
    ['-P', 'img'],
  ]) {
    const err = t.throws(() => parseRunArgs(args), { instanceOf: TpError });
    t.like(err, { code: 'DOCKER_RUN_ARGS', category: 'usage' }, args.join(' '));
  }
  t.notThrows(() => parseRunArgs(['--detach=false', 'img']));
});

test('a missing image, a flag without its value and an unknown flag are usage errors', (t) => {
  t.regex(t.throws(() => parseRunArgs(['--rm'])).message, /no image/);
  t.regex(t.throws(() => parseRunArgs(['-e'])).message, /-e needs a value/);
  t.regex(
    t.throws(() => parseRunArgs(['--frobnicate', 'img'])).message,
    /does not know the docker run flag --frobnicate/,
  );
  t.is(parseRunArgs(['--frobnicate=1', 'img']).image, 'img');
});
