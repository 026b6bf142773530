/**
 * `--docker-run` as `docker run` behaves, against the lab, in a namespace of this file's own
 * with its own echo: -p publishes the local container's port on the host through a helper
 * that goes with the container, and -it gives it tp's terminal.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { StatusReport } from '../../src/session/status.js';
import { LABEL_COMPONENT, LABEL_SESSION } from '../../src/lib/labels.js';
import { echoWorkload, namespaceSession, until } from '../helpers/engage.js';
import { engine } from '../helpers/docker.js';
import { dnsutilsImage, samplesImage } from '../helpers/lab.js';
import { json, labEnv, sessionName, tpLab, tpLabBackground } from '../helpers/session.js';

const ns = `tp-e2e-dockerrun-${randomBytes(3).toString('hex')}`;
const name = sessionName('dockerrun');
const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

const manifest = (image: string): string =>
  echoWorkload({
    namespace: ns,
    container: {
      image,
      args: ['echo', '-listen', ':8080'],
      env: [
        { name: 'ECHO_ENV', value: 'GREETING,LOCAL' },
        { name: 'GREETING', value: 'hello from the cluster' },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      ],
      readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
    },
  });

async function freeHostPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function httpGetJson(port: number, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as Record<string, unknown>);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    })
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new Error('timeout'));
      })
      .on('error', reject);
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => {
      resolve(true);
    });
  });
}

const publishers = async (): Promise<string[]> =>
  (
    await engine.listLabelled({ [LABEL_SESSION]: name, [LABEL_COMPONENT]: 'publisher' })
  ).containers.map((c) => c.name);

/** A single-quoted word for `sh -c`. */
const shellWord = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

const lab = namespaceSession({
  namespace: ns,
  session: name,
  manifest: () => manifest(samplesImage()),
  rollouts: ['deploy/echo'],
});

test.before(() => lab.setUp());

test.after.always(() => lab.tearDown());

test.serial(
  'replace --docker-run -p HOST:CONTAINER: the host reaches the local container at the host port, until it exits and the helper goes',
  async (t) => {
    const port = await freeHostPort();
    const local = `tp-e2e-published-${randomBytes(3).toString('hex')}`;
    const { output, exited } = tpLabBackground(t, [
      'replace',
      'echo',
      '--use',
      name,
      '--docker-run',
      '--',
      '--name',
      local,
      '-p',
      `${String(port)}:8080`,
      '-e',
      'LOCAL=published',
      samplesImage(),
      'echo',
      '-listen',
      ':8080',
    ]);
    const answer = await until(
      'the local container’s answer at the host port',
      async () => {
        const a = await httpGetJson(port, '/from-the-host');
        return (a.env as Record<string, string> | undefined)?.LOCAL === 'published' ? a : undefined;
      },
      180_000,
    );
    t.like(answer, {
      path: '/from-the-host',
      env: { GREETING: 'hello from the cluster', LOCAL: 'published' },
    });
    t.is((await publishers()).length, 1, output().stderr);

    await engine.signal(local, 'SIGTERM');
    t.not(await exited, 0, output().stderr);
    t.deepEqual(await publishers(), []);
    t.true(await refused(port));
  },
);

test.serial(
  'ingest --docker-run -it runs the container on tp’s terminal, with the pod’s env, and its exit code is tp’s',
  async (t) => {
    const tpCommand = [
      process.execPath,
      '--',
      bin,
      'ingest',
      'echo',
      '--use',
      name,
      '--docker-run',
      '--',
      '-it',
      dnsutilsImage(),
      'sh',
    ]
      .map(shellWord)
      .join(' ');
    // script(1) runs tp on a pseudo-terminal of its own, as a user's shell would.
    const child = spawn('script', ['-qfec', tpCommand, '/dev/null'], {
      env: { ...process.env, ...labEnv, TERM: 'dumb' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    const onData = (b: Buffer): void => {
      output += b.toString();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const exited = new Promise<number>((resolve) => {
      child.once('exit', (code) => {
        resolve(code ?? -1);
      });
    });
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    // Control sequences out, so that the shell's prompt is the last thing on the screen.
    // eslint-disable-next-line no-control-regex
    const screen = (): string => output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const waitFor = async (what: string, re: RegExp): Promise<void> => {
      try {
        await until(what, () => Promise.resolve(re.test(screen()) ? true : undefined), 180_000);
      } catch (err) {
        throw new Error(`${String(err)}; the terminal showed:\n${screen()}`);
      }
    };

    await waitFor('the container shell’s prompt', /# $/);
    child.stdin.write('echo "pod=[$POD_NAME] greeting=[$GREETING] tty=[$(tty)]"\r');
    await waitFor('the pod’s env in the shell', /greeting=\[hello from the cluster\]/);
    t.regex(screen(), /pod=\[echo-[a-z0-9]+-[a-z0-9]+\]/);
    t.regex(screen(), /tty=\[\/dev\/pts\/\d+\]/);
    child.stdin.write('exit 3\r');
    t.is(await exited, 3, screen());
    const status = json<StatusReport>(await tpLab(['status', '--name', name, '--json']));
    t.deepEqual(status.status?.engagements, []);
  },
);
