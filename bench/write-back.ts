// Benchmark of tp replace's write-back: the time from a file written in the local copy of a
// pod's emptyDir (a `docker exec` into a container that mounts the copy, timed from its
// return) until a container left in the pod serves it, against `kubectl cp` of the same file
// into the pod (into a container with tar that shares the emptyDir), measured in the same run. The pod's `reader` serves its files over HTTP
// (the samples echo's /fs), polled every 10 ms through a `kubectl port-forward`.
//   npx tsx bench/write-back.ts [--runs 5]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { request } from 'undici';
import { DockerEngine } from '../src/docker/engine.js';
import { LABEL_SESSION, tpLabels } from '../src/lib/labels.js';
import { clientVersion } from '../src/lib/package-info.js';
import { portForward } from '../test/helpers/kubectl.js';
import { dnsutilsImage, samplesImage } from '../test/helpers/lab.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const runId = Date.now().toString(36);
const ns = `tp-bench-writeback-${runId}`;
const session = `bench-writeback-${runId}`;
const tpBin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  TP_REGISTRY: process.env.TP_REGISTRY ?? '127.0.0.1:5000',
};
const execFileP = promisify(execFile);
const engine = DockerEngine.connect();
const context = process.env.TP_E2E_CONTEXT ?? 'tp-lab';
const sizes = { '1 KiB': 1024, '8 MiB': 8 * 1024 * 1024 };

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const p = execFileP(cmd, args, { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  if (input !== undefined) p.child.stdin?.end(input);
  try {
    return (await p).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}
const kubectl = (args: string[], input?: string): Promise<string> =>
  run('kubectl', ['--context', context, ...args], input);
const tp = (args: string[]): Promise<string> => run(process.execPath, [tpBin, ...args]);

const scratch = { name: 'scratch', mountPath: '/scratch' };
const manifest = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'notes', namespace: ns },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'notes' } },
    template: {
      metadata: { labels: { app: 'notes' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'app', image: samplesImage(), args: ['echo'], volumeMounts: [scratch] },
          {
            name: 'reader',
            image: samplesImage(),
            args: ['echo', '-listen', ':8081'],
            volumeMounts: [scratch],
          },
          // kubectl cp needs tar in the container it copies into.
          {
            name: 'shell',
            image: dnsutilsImage(),
            command: ['sleep', 'infinity'],
            volumeMounts: [scratch],
          },
        ],
        volumes: [{ name: 'scratch', emptyDir: {} }],
      },
    },
  },
};

const rows: Record<string, { tp: number[]; cp: number[] }> = {};
const started = performance.now();
const load0 = loadavg()[0] ?? 0;
const tmp = mkdtempSync(join(tmpdir(), 'tp-bench-writeback-'));
try {
  await kubectl(['create', 'namespace', ns]);
  await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
  await kubectl(['-n', ns, 'rollout', 'status', 'deploy/notes', '--timeout=180s']);
  await tp(['connect', '--docker', '-n', ns, '--name', session]);
  const engaged = JSON.parse(
    await tp(['replace', 'notes', '--container', 'app', '--use', session, '--json']),
  ) as { pods: string[]; mounts: { path: string; volume: string }[] };
  const pod = engaged.pods[0];
  const volume = engaged.mounts.find((m) => m.path === '/scratch')?.volume;
  if (pod === undefined || volume === undefined) throw new Error('no engaged pod or volume');
  // The local side: a container that mounts the copy, as the --docker-run one would.
  const writer = await engine.client.createContainer({
    Image: dnsutilsImage(),
    Cmd: ['sleep', 'infinity'],
    Labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: session }),
    HostConfig: { Binds: [`${volume}:/scratch`] },
  });
  await writer.start();
  await using forward = await portForward(ns, `pod/${pod}`, 8081);
  const served = async (path: string, size: number): Promise<boolean> => {
    const res = await request(`http://127.0.0.1:${forward.port}/fs?path=${path}`);
    const body = await res.body.arrayBuffer();
    return res.statusCode === 200 && body.byteLength === size;
  };

  for (let i = 0; i < runs; i++) {
    for (const [label, size] of Object.entries(sizes)) {
      const row = (rows[label] ??= { tp: [], cp: [] });
      const name = `wb-${randomBytes(4).toString('hex')}`;
      const exec = await writer.exec({
        Cmd: [
          'sh',
          '-c',
          `head -c ${size} /dev/urandom > /scratch/${name}.tmp && mv /scratch/${name}.tmp /scratch/${name}`,
        ],
      });
      const stream = await exec.start({});
      await new Promise((resolve) => stream.on('end', resolve).resume());
      const t0 = performance.now();
      while (!(await served(`/scratch/${name}`, size))) {
        if (performance.now() - t0 > 30_000) throw new Error(`${name} never reached the pod`);
        await new Promise((r) => setTimeout(r, 10));
      }
      row.tp.push(performance.now() - t0);

      // Baseline: the same size copied into the pod by hand.
      const local = join(tmp, name);
      writeFileSync(local, randomBytes(size));
      const t1 = performance.now();
      await kubectl(['-n', ns, 'cp', '-c', 'shell', local, `${pod}:/scratch/cp-${name}`]);
      row.cp.push(performance.now() - t1);
      rmSync(local);
    }
  }
} finally {
  await tp(['quit', '--name', session]).catch(() => undefined);
  await engine.removeLabelled({ [LABEL_SESSION]: session }).catch(() => undefined);
  await kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
console.log(
  `\n## Write-back delay, ${runs} runs, medians (${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
);
console.log(
  `${cpus().length} CPUs, load average ${load0.toFixed(2)} at the start and ${(loadavg()[0] ?? 0).toFixed(2)} at the end. Ratio = tp's delay / \`kubectl cp\` of the same size in the same run; below 1 is faster.\n`,
);
console.log('| file | tp write-back, ms | kubectl cp, ms | ratio | tp runs |');
console.log('|---|---|---|---|---|');
for (const [label, r] of Object.entries(rows)) {
  const tpMs = median(r.tp);
  const cpMs = median(r.cp);
  console.log(
    `| ${label} | ${tpMs.toFixed(0)} | ${cpMs.toFixed(0)} | ${(tpMs / cpMs).toFixed(2)} | ${r.tp.map((x) => x.toFixed(0)).join(', ')} |`,
  );
}
