// Benchmark of tp's volume copy (`tp ingest`/`tp replace` copying a pod's mounts into Docker
// volumes) against `kubectl cp` of the same file, measured in the same run. The pod's emptyDir
// holds one file of random bytes written by an init container. tp's figures come from the copy
// itself (src/engage/volumes.ts copyMounts, in this process, as the CLI runs it), split into the
// tar through the daemon alone (drained, no Docker) and the whole copy into a Docker volume;
// the baselines are `kubectl cp` and `kubectl exec cat` of the file to this host.
//   npx tsx bench/volumes.ts [--mib 64] [--runs 3]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { silentProgress } from '../src/cli/progress.js';
import { DockerEngine } from '../src/docker/engine.js';
import { copyMounts, removeMountCopies } from '../src/engage/volumes.js';
import { LABEL_SESSION } from '../src/lib/labels.js';
import { ControlClient } from '../src/session/control-client.js';
import { USE_OR_ENV, requireRunningSession } from '../src/session/status.js';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
  },
});
const mib = Number(values.mib);
const runs = Number(values.runs);
const MiB = 1024 * 1024;
const runId = Date.now().toString(36);
const ns = `tp-bench-volumes-${runId}`;
const session = `bench-volumes-${runId}`;
const workload = 'deployment/bulkvol';
const tpBin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  TP_REGISTRY: process.env.TP_REGISTRY ?? '127.0.0.1:5000',
};
const execFileP = promisify(execFile);
const engine = DockerEngine.connect();

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const p = execFileP(cmd, args, { env, timeout: 600_000, maxBuffer: 4 * mib * MiB });
  if (input !== undefined) p.child.stdin?.end(input);
  try {
    return (await p).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}
const kubectl = (args: string[], input?: string): Promise<string> =>
  run('kubectl', ['--context', process.env.TP_E2E_CONTEXT ?? 'tp-lab', ...args], input);
const tp = (args: string[]): Promise<string> => run(process.execPath, [tpBin, ...args]);

const dnsutils = (await run('cat', ['/var/lib/tp-lab/dnsutils.ref'])).trim();
const manifest = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'bulkvol', namespace: ns },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'bulkvol' } },
    template: {
      metadata: { labels: { app: 'bulkvol' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        initContainers: [
          {
            name: 'fill',
            image: dnsutils,
            command: ['sh', '-c', `head -c ${mib * MiB} /dev/urandom > /scratch/big.bin`],
            volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
          },
        ],
        containers: [
          {
            name: 'app',
            image: dnsutils,
            command: ['sleep', 'infinity'],
            volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
          },
        ],
        volumes: [{ name: 'scratch', emptyDir: {} }],
      },
    },
  },
};

interface Row {
  what: string;
  mibps: number[];
}
const rows: Row[] = [];
const record = (what: string, bytes: number, ms: number): void => {
  let row = rows.find((r) => r.what === what);
  if (row === undefined) rows.push((row = { what, mibps: [] }));
  row.mibps.push(bytes / MiB / (ms / 1000));
};

const started = performance.now();
const load0 = loadavg()[0] ?? 0;
const tmp = mkdtempSync(join(tmpdir(), 'tp-bench-volumes-'));
try {
  await kubectl(['create', 'namespace', ns]);
  await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
  await kubectl(['-n', ns, 'rollout', 'status', 'deploy/bulkvol', '--timeout=180s']);
  await tp(['connect', '--docker', '-n', ns, '--name', session]);
  // --mount=false: the copies below are the ones measured.
  await tp(['ingest', 'bulkvol', '--use', session, '--mount=false']);
  // The engaged pod: the one with the agent beside the app, not one still terminating.
  const pods = JSON.parse(
    await kubectl(['-n', ns, 'get', 'pods', '-l', 'app=bulkvol', '-o', 'json']),
  ) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { containers: { name: string }[] };
    }[];
  };
  const pod = pods.items.find(
    (p) =>
      p.metadata.deletionTimestamp === undefined &&
      p.spec.containers.some((c) => c.name === 'tp-agent'),
  )?.metadata.name;
  if (pod === undefined) throw new Error('no running bulkvol pod');

  const d = await requireRunningSession(engine, session, USE_OR_ENV);
  const control = await ControlClient.for(engine, d);
  if (control === undefined) throw new Error('the session has no control API');
  const info = await control.call('POST /v1/engagements/info', { workload }, 30_000);
  const scratch = info.mounts.filter((m) => m.path === '/scratch');

  for (let i = 0; i < runs; i++) {
    // The tar through the daemon alone, drained here.
    let t0 = performance.now();
    const answer = await control.stream('POST /v1/engagements/tar', { workload, path: '/scratch' });
    let bytes = 0;
    for await (const chunk of answer.body) bytes += (chunk as Buffer).length;
    record('tp: tar through the daemon (drained)', bytes, performance.now() - t0);

    // The whole copy: into a Docker volume, as tp ingest does it.
    const [copied] = await copyMounts(
      engine,
      { control, daemon: d.id, session, workload, mode: 'ingest', mounts: scratch },
      silentProgress,
    );
    if (copied === undefined) throw new Error('nothing copied');
    record('tp: copy into a Docker volume', copied.bytes, copied.ms);
    await removeMountCopies(engine, session, workload);

    // Baselines: the same file to this host.
    t0 = performance.now();
    await kubectl(['-n', ns, 'cp', '-c', 'app', `${pod}:/scratch/big.bin`, join(tmp, 'big.bin')]);
    record('kubectl cp', mib * MiB, performance.now() - t0);
    rmSync(join(tmp, 'big.bin'));
    t0 = performance.now();
    const out = await execFileP(
      'sh',
      [
        '-c',
        `kubectl --context ${process.env.TP_E2E_CONTEXT ?? 'tp-lab'} -n ${ns} exec ${pod} -c app -- cat /scratch/big.bin | wc -c`,
      ],
      { timeout: 600_000 },
    );
    record('kubectl exec cat', Number(out.stdout.trim()), performance.now() - t0);
  }
} finally {
  await tp(['leave', 'bulkvol', '--use', session]).catch(() => undefined);
  await tp(['quit', '--name', session]).catch(() => undefined);
  await engine.removeLabelled({ [LABEL_SESSION]: session }).catch(() => undefined);
  await kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const base = median(rows.find((r) => r.what === 'kubectl cp')?.mibps ?? []);
console.log(
  `\n## Volume copy: ${mib} MiB emptyDir file, ${runs} runs, medians (${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
);
console.log(
  `${cpus().length} CPUs, load average ${load0.toFixed(2)} at the start and ${(loadavg()[0] ?? 0).toFixed(2)} at the end. Ratio = to \`kubectl cp\` of the same file in the same run; above 1 is faster.\n`,
);
console.log('| what | MiB/s (median) | runs | ratio to kubectl cp |');
console.log('|---|---|---|---|');
for (const r of rows) {
  const m = median(r.mibps);
  console.log(
    `| ${r.what} | ${m.toFixed(1)} | ${r.mibps.map((x) => x.toFixed(1)).join(', ')} | ${(m / base).toFixed(2)} |`,
  );
}
