// Builds the daemon and agent images once before the docker tier, so that its test files,
// which run in parallel, find them current instead of each building them at the same time.
import { createProgress } from '../../src/cli/progress.js';
import { DockerEngine } from '../../src/docker/engine.js';
import { ensureImage } from '../../src/images/images.js';

const engine = DockerEngine.connect();
const progress = createProgress(process.stderr);
for (const component of ['daemon', 'agent'] as const) {
  const status = await ensureImage(engine, component, progress);
  console.log(`${status.ref} current (context ${status.contextHash})`);
}
