import test from 'ava';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { daemonImageRef, engine, testLabels, testSession } from '../helpers/docker.js';

test('removing by label removes exactly the labelled containers, networks and volumes', async (t) => {
  const mine = testSession();
  const other = testSession();
  t.teardown(async () => {
    await engine.removeLabelled({ [LABEL_SESSION]: mine });
    await engine.removeLabelled({ [LABEL_SESSION]: other });
  });
  const image = await daemonImageRef();
  for (const session of [mine, other]) {
    await engine.startContainer({
      image,
      name: `tp-${session}`,
      labels: testLabels(session),
      networkMode: 'none',
    });
    await engine.createNetwork(`tp-${session}`, testLabels(session));
    await engine.createVolume(`tp-${session}`, testLabels(session));
  }

  const removed = await engine.removeLabelled({ [LABEL_SESSION]: mine });
  t.deepEqual(
    [removed.containers, removed.networks, removed.volumes].map((list) => list.map((r) => r.name)),
    [[`tp-${mine}`], [`tp-${mine}`], [`tp-${mine}`]],
  );
  const left = await engine.listLabelled({ [LABEL_SESSION]: mine });
  t.deepEqual(left, { containers: [], networks: [], volumes: [] });
  const untouched = await engine.listLabelled({ [LABEL_SESSION]: other });
  t.is(untouched.containers.length + untouched.networks.length + untouched.volumes.length, 3);
});

test('stopping a container twice is harmless', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const c = await engine.startContainer({
    image: await daemonImageRef(),
    labels: testLabels(session),
    networkMode: 'none',
  });
  await c.stop();
  await c.stop();
  await c[Symbol.asyncDispose]();
  t.false(await c.isRunning());
});
