/**
 * -p for --docker-run through the real engine: a stand-in daemon (the daemon image running a
 * small server) on a network of the test's own, and the helper publishing its ports on the
 * host's loopback, TCP and UDP.
 */
import test from 'ava';
import { createSocket } from 'node:dgram';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { startPublishing } from '../../src/docker/publish.js';
import { TpError } from '../../src/lib/errors.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { daemonImageRef, engine, testLabels, testSession } from '../helpers/docker.js';

/** What the --docker-run container would be: listening in the daemon's namespace. */
const server = `
require('node:http').createServer((q, s) => s.end('local ' + q.url)).listen(8080);
const u = require('node:dgram').createSocket('udp4');
u.on('message', (m, r) => u.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address));
u.bind(9001, () => console.log('listening'));
`;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => {
        resolve(body);
      });
    }).on('error', reject);
  });
}

function udpAsk(port: number, text: string): Promise<string> {
  const c = createSocket('udp4');
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error('no UDP answer'));
    }, 5000);
    c.once('message', (m) => {
      clearTimeout(timer);
      resolve(m.toString());
    });
    c.send(text, port, '127.0.0.1');
  }).finally(() => c.close());
}

async function standIn(session: string): Promise<{ network: string; daemon: string }> {
  const network = `tp-${session}`;
  await engine.createNetwork(network, testLabels(session));
  const daemon = await engine.startContainer({
    image: await daemonImageRef(),
    name: network,
    entrypoint: ['node'],
    cmd: ['-e', server],
    labels: testLabels(session),
    networkMode: network,
  });
  await daemon.waitForLog(/listening/);
  return { network, daemon: daemon.id };
}

test('the helper publishes TCP and UDP ports on the host and goes with stop()', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const { network, daemon } = await standIn(session);
  const [tcp, udp] = [await freePort(), await freePort()];
  const published = await startPublishing(engine, {
    publish: [`127.0.0.1:${String(tcp)}:8080`, `127.0.0.1:${String(udp)}:9001/udp`],
    daemon,
    network,
    labels: testLabels(session),
  });
  t.deepEqual(published.ports, {
    '8080/tcp': [`127.0.0.1:${String(tcp)}`],
    '9001/udp': [`127.0.0.1:${String(udp)}`],
  });
  t.is(await httpGet(tcp, '/through-the-helper'), 'local /through-the-helper');
  t.is(await udpAsk(udp, 'ping'), 're:ping');
  await published.stop();
  await published.stop();
  t.false(await engine.isRunning(published.container));
  await t.throwsAsync(httpGet(tcp, '/'));
});

test('a host port already taken is a state error naming the -p value, and leaves no helper', async (t) => {
  const session = testSession();
  t.teardown(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  const { network, daemon } = await standIn(session);
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const { port } = holder.address() as AddressInfo;
  const err = await t.throwsAsync(
    startPublishing(engine, {
      publish: [`127.0.0.1:${String(port)}:8080`],
      daemon,
      network,
      labels: testLabels(session),
    }),
    { instanceOf: TpError },
  );
  t.like(err, { code: 'PUBLISH_PORT_TAKEN', category: 'state' });
  t.regex(err.message, new RegExp(`-p 127\\.0\\.0\\.1:${String(port)}:8080`));
  const left = await engine.listLabelled({ [LABEL_SESSION]: session });
  t.deepEqual(
    left.containers.map((c) => c.name),
    [network],
  );
});
