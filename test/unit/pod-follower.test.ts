import test from 'ava';
import { Engagements } from '../../src/daemon/engagements.js';
import { agentPods } from '../../src/daemon/pod-follower.js';
import { dial, loopbackAgent } from './agent-fixture.js';

const follow = { selector: 'app=web', container: 'tp-agent', image: 'registry/agent:1' };

const pod = (
  name: string,
  opts: { image?: string; ready?: boolean; deleting?: boolean } = {},
): {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { containers: { name: string; image: string }[] };
  status: { conditions: { type: string; status: string }[] };
} => ({
  metadata: { name, ...(opts.deleting === true ? { deletionTimestamp: 'now' } : {}) },
  spec: {
    containers: [
      { name: 'web', image: 'web:1' },
      { name: 'tp-agent', image: opts.image ?? follow.image },
    ],
  },
  status: { conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
});

test('the agent pods are the Ready ones running the agent image, not being deleted', (t) => {
  const list = {
    items: [
      pod('web-b'),
      pod('web-a'),
      pod('web-old', { image: 'registry/agent:0' }),
      pod('web-starting', { ready: false }),
      pod('web-going', { deleting: true }),
    ],
  };
  t.deepEqual(agentPods(list, follow), ['web-a', 'web-b']);
});

test("an engagement's streams follow its agent pods as they change, and keep them while none is Ready", async (t) => {
  const agent = await loopbackAgent();
  t.teardown(() => agent.stop());
  let now: string[] = ['web-2'];
  const engagements = new Engagements(
    () => dial(agent.port),
    () => undefined,
    's',
    () => Promise.resolve(now),
    60_000,
  );
  t.teardown(() => engagements.stop());
  await engagements.start({
    workload: 'deployment/web',
    namespace: 'ns',
    mode: 'ingest',
    container: 'web',
    pods: ['web-1'],
    ports: [],
    follow,
  });
  await engagements.follow();
  t.deepEqual(engagements.status()[0]?.pods, ['web-2']);
  now = [];
  await engagements.follow();
  t.deepEqual(engagements.status()[0]?.pods, ['web-2']);
});
