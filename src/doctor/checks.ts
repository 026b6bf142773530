import type { DockerEngine } from '../docker/engine.js';
import type { Progress } from '../cli/progress.js';
import { baseImages, ensureImage, imageStatus, type ImageComponent } from '../images/images.js';
import { serverVersion } from '../k8s/cluster.js';
import { loadKubeConfig, type KubeSelection, type LoadedKubeConfig } from '../k8s/kubeconfig.js';
import { TpError, messageOf } from '../lib/errors.js';
import { tpLabels } from '../lib/labels.js';
import { clientVersion } from '../lib/package-info.js';

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a failed or skipped check. */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

export interface DoctorOptions {
  kube: KubeSelection;
  /** Build missing images, so that the checks that run them can run. */
  build: boolean;
}

const pass = (id: string, title: string, detail: string): CheckResult => ({
  id,
  title,
  status: 'pass',
  detail,
});

function fromError(id: string, title: string, err: unknown): CheckResult {
  const fix = err instanceof TpError ? err.fix : 'Run again with TP_DEBUG=1 for the details.';
  return { id, title, status: 'fail', detail: messageOf(err), fix };
}

async function check(id: string, title: string, fn: () => Promise<string>): Promise<CheckResult> {
  try {
    return pass(id, title, await fn());
  } catch (err) {
    return fromError(id, title, err);
  }
}

/**
 * Everything `tp connect` will need, checked in the order it needs it. A check that depends
 * on a failed one is skipped with the reason, so the first failure is the one to fix.
 */
export async function runDoctor(
  engine: DockerEngine,
  opts: DoctorOptions,
  progress: Progress,
): Promise<DoctorReport> {
  const checks: CheckResult[] = [];

  const docker = await check('docker', 'Docker engine', async () => {
    const v = await engine.version();
    return `${v.version} (API ${v.apiVersion}, ${v.os}/${v.arch}) at ${engine.endpoint}`;
  });
  checks.push(docker);

  let loaded: LoadedKubeConfig | undefined;
  checks.push(
    await check('kubeconfig', 'Kubeconfig', () => {
      loaded = loadKubeConfig(opts.kube);
      const t = loaded.target;
      return Promise.resolve(
        `context ${t.context} (namespace ${t.namespace}) from ${t.files.join(', ')}`,
      );
    }),
  );
  if (loaded === undefined) {
    checks.push(skipped('cluster', 'Cluster API server', 'needs a kubeconfig'));
  } else {
    const { kc, target } = loaded;
    checks.push(
      await check('cluster', 'Cluster API server', async () => {
        const v = await serverVersion(kc, target);
        return `${v.gitVersion} at ${target.server}`;
      }),
    );
  }

  if (docker.status !== 'pass') {
    for (const c of ['daemon', 'agent'] as const)
      checks.push(skipped(`${c}-image`, imageTitle(c), 'needs Docker'));
    checks.push(skipped('tun', tunTitle, 'needs Docker'));
    return report(checks);
  }

  for (const c of ['daemon', 'agent'] as const) {
    checks.push(
      await check(`${c}-image`, imageTitle(c), () => imageCheck(engine, c, opts.build, progress)),
    );
  }
  const daemon = await imageStatus(engine, 'daemon').catch(() => undefined);
  if (daemon?.present !== true) {
    checks.push(
      skipped(
        'tun',
        tunTitle,
        'needs the daemon image',
        'Run `tp doctor --build` to build it and run this check.',
      ),
    );
  } else {
    checks.push(await check('tun', tunTitle, () => probeTun(engine, daemon.ref)));
  }
  return report(checks);
}

const tunTitle = 'NET_ADMIN and /dev/net/tun';
const imageTitle = (c: ImageComponent): string => `${c[0]?.toUpperCase() ?? ''}${c.slice(1)} image`;

function skipped(id: string, title: string, why: string, fix?: string): CheckResult {
  const r: CheckResult = { id, title, status: 'skip', detail: `skipped: ${why}` };
  if (fix !== undefined) r.fix = fix;
  return r;
}

function report(checks: CheckResult[]): DoctorReport {
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}

async function imageCheck(
  engine: DockerEngine,
  component: ImageComponent,
  build: boolean,
  progress: Progress,
) {
  const status = build
    ? await ensureImage(engine, component, progress)
    : await imageStatus(engine, component);
  if (status.present && status.current) return `${status.ref} is built and current`;
  // Not built (or stale): say whether a build would work, which needs the base images.
  const bases = component === 'daemon' ? [baseImages.node, baseImages.go] : [baseImages.node];
  for (const base of bases) {
    if ((await engine.imageInfo(base)) === undefined) {
      const step = progress.step(`Pulling ${base}`);
      try {
        await engine.pullImage(base, (l) => {
          step.update(l);
        });
        step.succeed();
      } catch (err) {
        step.fail();
        throw new TpError(
          'unavailable',
          `${status.ref} cannot be built: base image ${base} cannot be pulled (${messageOf(err)}).`,
          {
            code: 'BASE_IMAGE_MISSING',
            fix: 'Make the base image available to the engine (in the lab: `sudo lab/up` fills the registry mirror).',
            cause: err,
          },
        );
      }
    }
  }
  const state = status.present ? 'stale' : 'not built';
  return `${status.ref} ${state}; buildable from ${bases.join(', ')} (built on first use)`;
}

async function probeTun(engine: DockerEngine, image: string): Promise<string> {
  const result = await engine.runToCompletion({
    image,
    cmd: ['probe', 'tpprobe0'],
    labels: tpLabels(clientVersion(), 'probe'),
    capAdd: ['NET_ADMIN'],
    devices: ['/dev/net/tun'],
    networkMode: 'none',
  });
  let parsed: { ok?: boolean; message?: string } = {};
  try {
    parsed = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as typeof parsed;
  } catch {
    // fall through: the exit code and stderr say what happened
  }
  if (result.exitCode === 0 && parsed.ok === true) {
    return 'a container with only NET_ADMIN and /dev/net/tun created and raised a TUN device';
  }
  throw new TpError(
    'failed',
    `A container with NET_ADMIN and /dev/net/tun could not create a TUN device: ${parsed.message ?? result.stderr.trim()}`,
    {
      code: 'TUN_UNAVAILABLE',
      fix: 'The Docker host needs the tun driver (`modprobe tun`) and must allow --cap-add NET_ADMIN and --device /dev/net/tun.',
    },
  );
}

export function renderDoctor(r: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { pass: 'pass', fail: 'FAIL', skip: 'skip' };
  const width = Math.max(...r.checks.map((c) => c.title.length));
  const lines = r.checks.flatMap((c) => {
    const head = `${mark[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`;
    return c.fix === undefined ? [head] : [head, `      ${' '.repeat(width)}  fix: ${c.fix}`];
  });
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  lines.push('', r.ok ? 'tp is ready.' : `${failed} check${failed === 1 ? '' : 's'} failed.`);
  return lines.join('\n');
}
