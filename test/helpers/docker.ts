import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { DockerEngine, type RunningContainer } from '../../src/docker/engine.js';
import { silentProgress } from '../../src/cli/progress.js';
import { ensureImage, type ImageStatus } from '../../src/images/images.js';
import { LABEL_SESSION, tpLabels } from '../../src/lib/labels.js';
import { clientVersion } from '../../src/lib/package-info.js';

export const engine = DockerEngine.connect();

/** A label value unique to one test, so its cleanup can only touch what it created. */
export function testSession(): string {
  return `test-${randomBytes(4).toString('hex')}`;
}

export function testLabels(session: string): Record<string, string> {
  return tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: session });
}

let daemonImage: Promise<ImageStatus> | undefined;

/** Builds the daemon image once per test file (a no-op when it is current). */
export function daemonImageRef(): Promise<string> {
  daemonImage ??= ensureImage(engine, 'daemon', silentProgress);
  return daemonImage.then((s) => s.ref);
}

export interface DaemonFixture {
  daemon: RunningContainer;
  session: string;
}

/**
 * Owns a daemon container started as tp starts it (NET_ADMIN and /dev/net/tun, nothing more)
 * and removes everything labelled with the test's session afterwards, pass or fail.
 */
export const withDaemon = test.macro(
  async (t: ExecutionContext, run: (t: ExecutionContext, f: DaemonFixture) => Promise<void>) => {
    const session = testSession();
    const image = await daemonImageRef();
    const daemon = await engine.startContainer({
      image,
      name: `tp-${session}`,
      labels: testLabels(session),
      capAdd: ['NET_ADMIN'],
      devices: ['/dev/net/tun'],
    });
    try {
      await run(t, { daemon, session });
    } finally {
      await daemon.stop();
      await engine.removeLabelled({ [LABEL_SESSION]: session });
    }
  },
);
