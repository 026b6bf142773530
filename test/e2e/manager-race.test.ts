/**
 * Two developers connecting at the same moment, when tp-manager is missing (or outdated), both
 * install it: neither may fail because the other wrote it first. Uses a manager namespace of
 * its own, so the shared tp-manager of the other files is not touched.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { engine } from '../helpers/docker.js';
import { sessionName, tpLab } from '../helpers/session.js';

const managerNs = `tp-e2e-mgr-${randomBytes(3).toString('hex')}`;
const env = { TP_MANAGER_NAMESPACE: managerNs };
const sessions = [sessionName('race'), sessionName('race')];

test.after.always(async () => {
  for (const s of sessions) {
    await tpLab(['quit', '--name', s], env);
    await engine.removeLabelled({ [LABEL_SESSION]: s });
  }
  await tpLab(['uninstall', '--manager-namespace', managerNs], env);
});

test('two sessions connecting at once both install tp-manager and both connect', async (t) => {
  const results = await Promise.all(
    sessions.map((s) =>
      tpLab(['connect', '--docker', '-n', 'samples', '--name', s, '--json'], env),
    ),
  );
  for (const r of results) t.is(r.exitCode, 0, r.stdout + r.stderr);
});
