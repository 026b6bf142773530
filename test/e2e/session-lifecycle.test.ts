/**
 * A session's life beyond the happy path: tp-manager replaced under it, the daemon killed from
 * outside, quit and uninstall leaving nothing. Uses its own manager namespace, so removing
 * that manager cannot disturb the other test files.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import type { ConnectResult } from '../../src/session/connect.js';
import type { StatusReport } from '../../src/session/status.js';
import { engine } from '../helpers/docker.js';
import { kubectl, kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { Joined, json, sessionName, tpLab } from '../helpers/session.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';

const managerNs = `tp-e2e-${randomBytes(3).toString('hex')}`;
const env = { TP_MANAGER_NAMESPACE: managerNs };

test.after.always(async () => {
  await tpLab(['uninstall', '--manager-namespace', managerNs]);
  await kubectl(['delete', 'namespace', managerNs, '--ignore-not-found', '--wait=false']);
});

async function connect(name: string): Promise<{ c: ConnectResult; joined: Joined }> {
  const r = await tpLab(['connect', '--docker', '-n', 'samples', '--name', name, '--json'], env);
  if (r.exitCode !== 0) throw new Error(`connect failed: ${r.stdout} ${r.stderr}`);
  const c = json<ConnectResult>(r);
  const image = (await engine.client.getContainer(c.container).inspect()).Config.Image;
  return { c, joined: new Joined(c.container, image) };
}

async function status(name: string): Promise<StatusReport> {
  return json<StatusReport>(await tpLab(['status', '--name', name, '--json'], env));
}

test.serial(
  'when tp-manager is replaced, open flows end and new ones work again within seconds',
  async (t) => {
    const name = sessionName('life');
    t.teardown(() => tpLab(['quit', '--name', name], env).then(() => undefined));
    const { joined } = await connect(name);
    // A flow open through the manager that is about to go.
    const held = joined.flows(['tcp-hold', 'tcp-echo', '9000', '60000']);
    await new Promise((r) => setTimeout(r, 3000));
    const pod = (
      await kubectlOk([
        '-n',
        managerNs,
        'get',
        'pods',
        '-l',
        'app.kubernetes.io/name=tp-manager',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).trim();
    await kubectlOk(['-n', managerNs, 'delete', 'pod', pod, '--wait=false']);
    const start = Date.now();
    let recovered = -1;
    while (Date.now() - start < 60_000) {
      const r = await joined.run(samplesImage(), ['get', 'http://echo/'], undefined, 30_000);
      if (r.exitCode === 0) {
        recovered = Date.now() - start;
        break;
      }
    }
    t.true(recovered >= 0, 'no request succeeded within 60 s of the manager pod being deleted');
    t.like(
      await held,
      { code: 'ECONNRESET' },
      'the open flow ends with a reset, not a clean close',
    );
    t.log(`first successful request ${recovered} ms after the manager pod was deleted`);
    const s = await status(name);
    t.true(s.connected);
    t.is(s.status?.tunnel.state, 'ready');
    t.true((s.status?.tunnel.reconnects ?? 0) >= 1, JSON.stringify(s.status?.tunnel));
  },
);

test.serial(
  'a daemon killed from outside shows in tp status, and tp quit cleans it up',
  async (t) => {
    const name = sessionName('life');
    const { c } = await connect(name);
    await engine.signal(c.container, 'SIGKILL');
    const s = await status(name);
    t.false(s.connected);
    t.like(s.session, { name, running: false });
    const text = await tpLab(['status', '--name', name], env);
    t.regex(text.stdout, /not running/);
    const q = await tpLab(['quit', '--name', name, '--json'], env);
    t.is(q.exitCode, 0, q.stderr);
    t.deepEqual(await engine.listLabelled({ [LABEL_SESSION]: name }), {
      containers: [],
      networks: [],
      volumes: [],
    });
  },
);

test.serial(
  'quit leaves nothing labelled tp in Docker, and quitting again is not an error',
  async (t) => {
    const name = sessionName('life');
    await connect(name);
    const q = await tpLab(['quit', '--name', name, '--json'], env);
    t.is(q.exitCode, 0, q.stderr);
    t.is(json<{ session: string }>(q).session, name);
    t.deepEqual(await engine.listLabelled({ [LABEL_SESSION]: name }), {
      containers: [],
      networks: [],
      volumes: [],
    });
    const again = await tpLab(['quit', '--name', name], env);
    t.is(again.exitCode, 0);
    t.regex(again.stdout, /Not connected/);
  },
);

test.serial('uninstall removes tp-manager and the namespace tp created for it', async (t) => {
  const name = sessionName('life');
  await connect(name);
  const r = await tpLab(['uninstall', '--manager-namespace', managerNs, '--json'], env);
  t.is(r.exitCode, 0, r.stderr);
  const u = json<{ sessions: string[]; cluster: string[] }>(r);
  t.true(u.sessions.includes(name));
  t.true(u.cluster.includes(`deployment ${managerNs}/tp-manager`));
  const left = await kubectl([
    '-n',
    managerNs,
    'get',
    'deployment,serviceaccount',
    '-l',
    'tp.managed=true',
    '-o',
    'name',
  ]);
  t.is(left.stdout.trim(), '');
  t.deepEqual(await engine.listLabelled({ [LABEL_SESSION]: name }), {
    containers: [],
    networks: [],
    volumes: [],
  });
});
