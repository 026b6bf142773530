/**
 * The session's Docker network: a local container started on it (a database, say) is reached
 * by name from containers joined to the daemon, after the cluster's own names; quit removes
 * the network and leaves the user's container running.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import type { ConnectResult } from '../../src/session/connect.js';
import { inspectContainer, inspectNetwork } from '../../src/docker/inspect.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { engine, testLabels } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { Joined, json, sessionName, tpLab } from '../helpers/session.js';

const name = sessionName('net');
const suffix = randomBytes(3).toString('hex');
const db = `tp-e2e-db-${suffix}`;
const userNet = `tp-e2e-usernet-${suffix}`;
const cache = `tp-e2e-cache-${suffix}`;
const userSession = `${name}-user`;
let joined: Joined;
let network = '';
let dbId = '';

test.before(async () => {
  // A network of the user's own (a compose project's, say), with a container on it.
  await engine.createNetwork(userNet, testLabels(userSession));
  await engine.startContainer({
    image: samplesImage(),
    name: cache,
    cmd: ['tcp-echo', '-listen', ':9000'],
    labels: testLabels(userSession),
    networkMode: userNet,
  });
  const r = await tpLab([
    'connect',
    '--docker',
    '-n',
    'samples',
    '--name',
    name,
    '--network',
    userNet,
    '--json',
  ]);
  if (r.exitCode !== 0) throw new Error(`connect failed: ${r.stdout} ${r.stderr}`);
  const c = json<ConnectResult>(r);
  network = c.network;
  joined = new Joined(c.container, samplesImage());
  // Started as a user would start a local database: no tp labels, on the session's network,
  // and also answering to `echo`, a name the cluster has too.
  const started = await engine.startContainer({
    image: samplesImage(),
    name: db,
    cmd: ['tcp-echo', '-listen', ':9000'],
    labels: {},
    networkMode: network,
    networkAliases: ['echo'],
  });
  dbId = started.id;
});

test.after.always(async () => {
  await tpLab(['quit', '--name', name]);
  await engine.removeLabelled({ [LABEL_SESSION]: name });
  if (dbId !== '') await engine.removeContainer(dbId);
  // The user's side carries a test label of its own, so that tp's quit cannot mistake it.
  await engine.removeLabelled({ [LABEL_SESSION]: userSession });
});

test.serial(
  'a joined container reaches a local container on the session network by name',
  async (t) => {
    const r = await joined.run(samplesImage(), ['tcp', `${db}:9000`, 'hello db']);
    t.is(r.exitCode, 0, r.stderr);
    t.is(r.stdout.trim(), 'hello db');
  },
);

test.serial(
  'with --network, a container on the user’s own network is reached by name too',
  async (t) => {
    const r = await joined.run(samplesImage(), ['tcp', `${cache}:9000`, 'hello cache']);
    t.is(r.exitCode, 0, r.stderr);
    t.is(r.stdout.trim(), 'hello cache');
  },
);

test.serial('a cluster name wins over a local container answering to the same name', async (t) => {
  const echoIP = (
    await kubectlOk(['-n', 'samples', 'get', 'svc', 'echo', '-o', 'jsonpath={.spec.clusterIP}'])
  ).trim();
  const r = await joined.run(samplesImage(), ['resolve', 'echo']);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), [echoIP]);
});

test.serial(
  'quit removes the session network and leaves the local container running',
  async (t) => {
    const q = await tpLab(['quit', '--name', name, '--json']);
    t.is(q.exitCode, 0, q.stderr);
    t.is(await inspectNetwork(engine, network), undefined);
    const after = await inspectContainer(engine, dbId);
    t.true(after?.running);
    t.false(Object.keys(after?.networks ?? {}).includes(network));
  },
);
