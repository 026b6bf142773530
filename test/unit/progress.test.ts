import test from 'ava';
import { createProgress } from '../../src/cli/progress.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, isTTY, write: (c: string) => chunks.push(c) };
}

test('without a TTY each step is a plain line when it starts and one when it ends', (t) => {
  const s = sink(false);
  let now = 1000;
  const step = createProgress(s, () => now).step('Building tp-daemon:0.1.0');
  step.update('Step 1/9 : FROM node:20-bookworm-slim');
  step.update('Step 1/9 : FROM node:20-bookworm-slim');
  now = 3500;
  step.succeed();
  step.fail('ignored: the step already ended');
  t.deepEqual(s.chunks, [
    '... Building tp-daemon:0.1.0\n',
    '    Step 1/9 : FROM node:20-bookworm-slim\n',
    'ok Building tp-daemon:0.1.0 (2.5s)\n',
  ]);
});

test('on a TTY a step redraws one line in place and ends it with a mark', (t) => {
  const s = sink(true);
  const step = createProgress(s, () => 0).step('Pulling node:20-bookworm-slim');
  step.fail('no such image');
  t.true(s.chunks.every((c) => c.startsWith('\r\x1b[K')));
  t.is(s.chunks.at(-1), '\r\x1b[K✖ Pulling node:20-bookworm-slim: no such image (0.0s)\n');
});
