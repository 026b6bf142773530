/**
 * Several sessions on one machine: status shows them all, each command asks for the selector
 * it takes, connect refuses a session that someone else started, and never removes a running
 * daemon unless --replace says so.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { filesTar } from '../../src/docker/files.js';
import { inspectContainer } from '../../src/docker/inspect.js';
import { SESSION_SECRET_PATH } from '../../src/contract/session.js';
import type { TpErrorJson } from '../../src/lib/errors.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import type { ConnectResult } from '../../src/session/connect.js';
import {
  LABEL_HOST_UID,
  LABEL_KUBE_IDENTITY,
  LABEL_KUBE_USER,
} from '../../src/session/ownership.js';
import type { StatusReport, StatusReports } from '../../src/session/status.js';
import { engine } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { json, sessionName, tpLab } from '../helpers/session.js';

const first = sessionName('multi');
const second = sessionName('multi');
const dir = mkdtempSync(join(tmpdir(), 'tp-sessions-'));
// Whatever the runner's environment says, these tests pick sessions themselves.
const noSelector = { TP_SESSION: '' };
const containers: Record<string, string> = {};

async function connect(name: string, extra: string[] = []): Promise<ConnectResult> {
  const r = await tpLab(
    ['connect', '--docker', '-n', 'samples', '--name', name, '--json', ...extra],
    noSelector,
  );
  if (r.exitCode !== 0) throw new Error(`connect ${name} failed: ${r.stdout} ${r.stderr}`);
  return json<ConnectResult>(r);
}

test.before(async () => {
  for (const name of [first, second]) containers[name] = (await connect(name)).container;
});

test.after.always(async () => {
  for (const name of [first, second]) {
    await tpLab(['quit', '--name', name]);
    await engine.removeLabelled({ [LABEL_SESSION]: name });
  }
  rmSync(dir, { recursive: true, force: true });
});

test.serial(
  'tp status without a selector shows every session; --name or TP_SESSION shows one, --name first',
  async (t) => {
    const all = await tpLab(['status', '--json'], noSelector);
    t.is(all.exitCode, 0, all.stderr);
    const reports = json<StatusReports>(all).sessions;
    for (const name of [first, second]) {
      t.like(
        reports.find((s) => s.session?.name === name),
        { connected: true, status: { namespace: 'samples' } },
        name,
      );
    }
    const text = await tpLab(['status'], noSelector);
    t.regex(text.stdout, new RegExp(`^Daemon\\s+: ${first} `, 'm'));
    t.regex(text.stdout, new RegExp(`^Daemon\\s+: ${second} `, 'm'));

    const named = json<StatusReport>(await tpLab(['status', '--name', first, '--json']));
    t.like(named, { connected: true, session: { name: first } });
    const byEnv = json<StatusReport>(await tpLab(['status', '--json'], { TP_SESSION: second }));
    t.like(byEnv, { connected: true, session: { name: second } });
    const both = json<StatusReport>(
      await tpLab(['status', '--name', first, '--json'], { TP_SESSION: second }),
    );
    t.like(both, { session: { name: first } });
  },
);

test.serial(
  'with several sessions, tp curl asks for TP_SESSION and tp quit for --name or TP_SESSION, ending nothing',
  async (t) => {
    const curl = await tpLab(['curl', '-sS', 'http://echo/'], noSelector);
    t.is(curl.exitCode, 2);
    t.regex(curl.stderr, /^Error: There are \d+ sessions: .*\n {2}Fix: .*`TP_SESSION=<session>`/);
    t.notRegex(curl.stderr, /--name/);

    const quit = await tpLab(['quit', '--json'], noSelector);
    t.is(quit.exitCode, 2);
    t.like(json<{ error: TpErrorJson }>(quit).error, {
      code: 'SESSION_AMBIGUOUS',
      fix: 'Say which one with `--name <session>` or `TP_SESSION=<session>`.',
    });
    for (const name of [first, second]) {
      t.true((await inspectContainer(engine, containers[name] ?? name))?.running, name);
    }

    const missing = await tpLab(['curl', 'http://echo/'], { TP_SESSION: 'no-such-session' });
    t.is(missing.exitCode, 5);
    t.regex(missing.stderr, /^Error: There is no session named no-such-session\./);
    t.regex(missing.stderr, /`TP_SESSION=no-such-session tp connect --docker`/);
    t.notRegex(missing.stderr, /--name/);
  },
);

test.serial(
  'connect with another kubeconfig user to a running session is refused, names its owner, and leaves it running',
  async (t) => {
    const raw = await kubectlOk(['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json']);
    const kc = JSON.parse(raw) as {
      users: { name: string }[];
      contexts: { context: { user: string } }[];
    };
    const owner = kc.users[0]?.name ?? '';
    for (const u of kc.users) u.name = 'someone-else';
    for (const c of kc.contexts) c.context.user = 'someone-else';
    const file = join(dir, 'someone-else.kubeconfig');
    writeFileSync(file, JSON.stringify(kc));

    const before = await inspectContainer(engine, first);
    t.like(before?.labels, {
      [LABEL_HOST_UID]: String(userInfo().uid),
      [LABEL_KUBE_USER]: owner,
    });
    t.regex(before?.labels[LABEL_KUBE_IDENTITY] ?? '', /^[0-9a-f]{16}$/);

    const r = await tpLab(
      ['connect', '--docker', '--kubeconfig', file, '-n', 'samples', '--name', first, '--json'],
      noSelector,
    );
    t.is(r.exitCode, 5);
    const err = json<{ error: TpErrorJson }>(r).error;
    t.like(err, { code: 'SESSION_OWNED_ELSEWHERE', category: 'state' });
    t.true(
      err.message.includes(`kubeconfig user "${owner}", not your "someone-else"`),
      err.message,
    );
    t.true(err.fix.includes(`\`tp quit --name ${first}\` only if it is yours to end`), err.fix);

    const after = await inspectContainer(engine, first);
    t.is(after?.id, before?.id);
    t.true(after?.running);
    t.like(json<StatusReport>(await tpLab(['status', '--name', first, '--json'])), {
      connected: true,
    });
  },
);

test.serial(
  'connect never removes a running daemon whose status it cannot read; --replace replaces it',
  async (t) => {
    const old = containers[second] ?? second;
    // The daemon keeps the secret it started with; the CLI reads the file, so every control
    // request from now on is refused with 401 while the container keeps running.
    await engine.client
      .getContainer(old)
      .putArchive(await filesTar([{ path: SESSION_SECRET_PATH, content: 'not-the-secret' }]), {
        path: '/',
      });

    const r = await tpLab(
      ['connect', '--docker', '-n', 'samples', '--name', second, '--json'],
      noSelector,
    );
    t.is(r.exitCode, 5, r.stdout);
    const err = json<{ error: TpErrorJson }>(r).error;
    t.like(err, { code: 'SESSION_UNHEALTHY', category: 'state' });
    t.regex(err.message, /HTTP 401/);
    t.true(err.fix.includes(`\`tp quit --name ${second}\``), err.fix);
    t.regex(err.fix, /--replace/);
    const kept = await inspectContainer(engine, second);
    t.is(kept?.id, old);
    t.true(kept?.running);

    const replaced = await connect(second, ['--replace']);
    t.like(replaced, { created: true, replaced: true, name: second });
    t.not(replaced.container, old);
    t.is(await inspectContainer(engine, old), undefined);
    t.like(json<StatusReport>(await tpLab(['status', '--name', second, '--json'])), {
      connected: true,
      session: { name: second, container: replaced.container },
    });
  },
);
