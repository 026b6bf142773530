/**
 * `tp connect --docker` against a cluster whose control plane is a container (kind, k3d,
 * minikube's docker driver), reproduced in the lab with a STAND-IN: the lab's API server runs
 * on the host, so a container on a user-defined network plays kind's control plane. It is a
 * plain TCP proxy (TLS passes through; the API server's certificate covers 127.0.0.1, which
 * tp keeps verifying) from its port 6443 to the real API server at the Docker gateway, and it
 * publishes that port on the host's 127.0.0.1 only, as kind does. A kubeconfig copy of tp-lab
 * names https://127.0.0.1:<that port>: host.docker.internal cannot reach it, so connect must
 * join the stand-in's network.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectContainer } from '../../src/docker/inspect.js';
import type { RunningContainer } from '../../src/docker/engine.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import type { ConnectResult } from '../../src/session/connect.js';
import type { StatusReport } from '../../src/session/status.js';
import { daemonImageRef, engine, testLabels } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { samplesImage } from '../helpers/lab.js';
import { Joined, json, sessionName, tpLab } from '../helpers/session.js';

/** The lab's API server as a container sees it: on the Docker gateway (lab/README.md). */
const API_SERVER = { host: '198.19.0.1', port: 6443 };

// Logs where each connection comes from, so the test can tell the daemon's own API traffic
// (not only tp's on the host) went through it.
const PROXY = `
const net = require('node:net');
const upstream = { host: process.env.UPSTREAM_HOST, port: Number(process.env.UPSTREAM_PORT) };
net
  .createServer({ allowHalfOpen: true }, (client) => {
    console.log('connection from ' + client.remoteAddress.replace(/^::ffff:/, ''));
    const server = net.connect({ ...upstream, allowHalfOpen: true });
    const drop = () => { client.destroy(); server.destroy(); };
    client.on('error', drop);
    server.on('error', drop);
    client.pipe(server);
    server.pipe(client);
  })
  .listen(6443, () => console.log('proxy ready'));
`;

// One id for the session, the stand-in and its network: `tp quit` and the cleanup below both
// remove everything labelled with it.
const id = sessionName('cpnet');
const network = `${id}-net`;
const controlPlane = `${id}-control-plane`;
const dir = mkdtempSync(join(tmpdir(), 'tp-cpnet-'));
let proxy: RunningContainer;
let hostPort = 0;
let connected: ConnectResult;

function connectArgs(kubeconfig: string): string[] {
  return [
    'connect',
    '--docker',
    '--kubeconfig',
    kubeconfig,
    '-n',
    'samples',
    '--name',
    id,
    '--json',
  ];
}

test.before(async () => {
  const image = await daemonImageRef();
  await engine.createNetwork(network, testLabels(id));
  proxy = await engine.startContainer({
    image,
    name: controlPlane,
    labels: testLabels(id),
    entrypoint: ['node'],
    cmd: ['-e', PROXY],
    env: { UPSTREAM_HOST: API_SERVER.host, UPSTREAM_PORT: String(API_SERVER.port) },
    networkMode: network,
    publishLoopback: [6443],
  });
  await proxy.waitForLog(/proxy ready/, 30_000);
  const port = (await inspectContainer(engine, proxy.id))?.loopbackPorts[6443];
  if (port === undefined) throw new Error(`${controlPlane} publishes no port on 127.0.0.1`);
  hostPort = port;

  const raw = await kubectlOk(['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json']);
  const kc = JSON.parse(raw) as { clusters: { cluster: { server: string } }[] };
  for (const c of kc.clusters) c.cluster.server = `https://127.0.0.1:${hostPort}`;
  const kubeconfig = join(dir, 'kind-like.kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify(kc));

  const r = await tpLab(connectArgs(kubeconfig));
  if (r.exitCode !== 0) throw new Error(`connect failed: ${r.stdout} ${r.stderr}`);
  connected = json<ConnectResult>(r);
});

test.after.always(async () => {
  await tpLab(['quit', '--name', id]);
  await engine.removeLabelled({ [LABEL_SESSION]: id });
  rmSync(dir, { recursive: true, force: true });
});

test.serial(
  "stand-in for kind: connect says the daemon reaches the API server on the control plane's network",
  (t) => {
    t.like(connected, {
      created: true,
      context: 'tp-lab',
      namespace: 'samples',
      server: `https://127.0.0.1:${hostPort}`,
      apiPath: `network ${network}`,
    });
  },
);

test.serial(
  "stand-in for kind: the daemon container is on its session network and the control plane's, not bridge",
  async (t) => {
    const daemon = await inspectContainer(engine, connected.container);
    t.deepEqual(Object.keys(daemon?.networks ?? {}).sort(), [connected.network, network].sort());
  },
);

test.serial(
  'stand-in for kind: tp status shows the network path and the server as the daemon reaches it',
  async (t) => {
    const r = await tpLab(['status', '--name', id, '--json']);
    t.is(r.exitCode, 0, r.stderr);
    const s = json<StatusReport>(r);
    t.true(s.connected);
    t.like(s.status, {
      server: `https://127.0.0.1:${hostPort}`,
      serverFromDaemon: `https://${controlPlane}:6443`,
      apiPath: `network ${network}`,
      tunnel: { state: 'ready' },
    });
  },
);

test.serial('stand-in for kind: a joined container gets HTTP from samples/echo', async (t) => {
  const image = (await engine.client.getContainer(connected.container).inspect()).Config.Image;
  const joined = new Joined(connected.container, image);
  const r = await joined.run(samplesImage(), ['get', 'http://echo/']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /hello from the cluster/);
});

test.serial("stand-in for kind: the daemon's API traffic went through the stand-in", async (t) => {
  const ip = (await inspectContainer(engine, connected.container))?.networks[network]?.ip;
  t.truthy(ip);
  const { stdout } = await proxy.logs();
  t.true(stdout.split('\n').includes(`connection from ${ip ?? '?'}`), stdout);
});

test.serial(
  'stand-in for kind: a second connect reports the running session and its network path',
  async (t) => {
    const kubeconfig = join(dir, 'kind-like.kubeconfig');
    const r = await tpLab(connectArgs(kubeconfig));
    t.is(r.exitCode, 0, r.stderr);
    t.like(json<ConnectResult>(r), { created: false, apiPath: `network ${network}` });
  },
);
