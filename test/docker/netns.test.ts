import test from 'ava';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { daemonImageRef, engine, testLabels, testSession, withDaemon } from '../helpers/docker.js';

/** Interface names, and the inode that identifies the network namespace itself. */
const netnsReport = [
  'sh',
  '-c',
  'readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort',
];

test(
  'the daemon runs unprivileged with only NET_ADMIN and /dev/net/tun, and can create a TUN device',
  withDaemon,
  async (t, { daemon }) => {
    t.true(await daemon.isRunning());
    const probe = await daemon.exec(['node', '/app/dist/src/daemon/main.js', 'probe', 'tpprobe1']);
    t.is(probe.exitCode, 0, probe.stderr);
    t.deepEqual(JSON.parse(probe.stdout), { ok: true, message: 'ok' });
  },
);

test(
  'a container joined with --network container:<daemon> sees the same interfaces as the daemon',
  withDaemon,
  async (t, { daemon, session }) => {
    const inDaemon = await daemon.exec(netnsReport);
    t.is(inDaemon.exitCode, 0, inDaemon.stderr);

    const joined = await engine.runToCompletion({
      image: await daemonImageRef(),
      entrypoint: [],
      cmd: netnsReport,
      labels: testLabels(session),
      networkMode: `container:${daemon.id}`,
    });
    t.is(joined.exitCode, 0, joined.stderr);
    t.is(joined.stdout, inDaemon.stdout);
    t.regex(inDaemon.stdout, /^net:\[\d+\]\n(.+\n)*lo\n/);
  },
);

test('without NET_ADMIN the same container cannot create a TUN device', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const result = await engine.runToCompletion({
    image: await daemonImageRef(),
    cmd: ['probe', 'tpprobe2'],
    labels: testLabels(session),
    devices: ['/dev/net/tun'],
    networkMode: 'none',
  });
  t.is(result.exitCode, 1);
  const out = JSON.parse(result.stdout) as { ok: boolean; message: string };
  t.false(out.ok);
  t.regex(out.message, /CAP_NET_ADMIN/);
});
