import test from 'ava';
import {
  ENV_ONLY,
  FLAG_OR_ENV,
  ambiguousSessions,
  notConnected,
  notRunning,
} from '../../src/session/status.js';
import { renderStatusReport } from '../../src/render/session.js';

test('with several sessions, a command with flags asks for --name or TP_SESSION', (t) => {
  const err = ambiguousSessions(['b', 'a'], FLAG_OR_ENV);
  t.like(err, { code: 'SESSION_AMBIGUOUS', message: 'There are 2 sessions: a, b.' });
  t.is(err.fix, 'Say which one with `--name <session>` or `TP_SESSION=<session>`.');
});

test('with several sessions, tp curl asks for TP_SESSION and never for a --name it cannot take', (t) => {
  const err = ambiguousSessions(['a', 'b'], ENV_ONLY);
  t.is(err.fix, 'Say which one with `TP_SESSION=<session>`.');
  t.notRegex(err.fix, /--name/);
});

test('a session name that does not exist offers the running ones with the selectors the command takes', (t) => {
  const flags = notConnected('x', FLAG_OR_ENV, ['b', 'a']);
  t.like(flags, { code: 'NOT_CONNECTED', message: 'There is no session named x.' });
  t.is(
    flags.fix,
    'Start it with `tp connect --docker --name x`, or pick one of the running sessions (a, b) with `--name <session>` or `TP_SESSION=<session>`.',
  );
  const env = notConnected('x', ENV_ONLY, ['a']);
  t.is(
    env.fix,
    'Start it with `TP_SESSION=x tp connect --docker`, or pick one of the running sessions (a) with `TP_SESSION=<session>`.',
  );
});

test('a stopped session tells a tp curl user to clean it up with TP_SESSION', (t) => {
  const err = notRunning('s', 137, ENV_ONLY);
  t.like(err, { code: 'SESSION_NOT_RUNNING', category: 'state' });
  t.regex(err.message, /exit code 137/);
  t.regex(err.fix, /`TP_SESSION=s tp quit`/);
});

test('tp status with several sessions renders one block per session', (t) => {
  const text = renderStatusReport({
    sessions: [
      {
        connected: false,
        session: {
          name: 'a',
          container: 'x',
          context: 'c',
          namespace: 'n',
          running: true,
          networks: ['a'],
        },
        error: 'HTTP 401',
      },
      {
        connected: false,
        session: {
          name: 'b',
          container: 'y',
          context: 'c',
          namespace: 'n',
          running: false,
          networks: [],
          exit: { code: 137, oomKilled: false, finishedAt: 'then' },
        },
      },
    ],
  });
  const blocks = text.split('\n\n');
  t.is(blocks.length, 3);
  t.regex(blocks[0] ?? '', /^2 sessions/);
  t.regex(
    blocks[1] ?? '',
    /^Session a: the daemon container runs but does not answer \(HTTP 401\)/,
  );
  t.regex(blocks[2] ?? '', /^Session b: the daemon container is not running \(exit code 137/);
});
