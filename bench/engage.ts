// Benchmark of tp replace on the lab cluster, each figure against a baseline measured in the
// same run, in a namespace of its own with its own echo:
// - replace: from `tp replace` to the first request from the cluster answered locally, against
//   `kubectl rollout restart` of the same Deployment until its new pod answers;
// - leave: from `tp leave` to the first answer from the pod again, against the same restart;
// - latency: sequential HTTP requests from a pod in the cluster to the echo Service, through a
//   replace (to a local container), against the same requests to the original pod.
// The requests come from bash in the lab's dnsutils pod, so its own cost is in both figures.
//   npx tsx bench/engage.ts [--requests 200] [--runs 3]
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { DockerEngine } from '../src/docker/engine.js';
import { LABEL_SESSION, tpLabels } from '../src/lib/labels.js';
import { clientVersion } from '../src/lib/package-info.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
  },
});
const requests = Number(values.requests);
const runs = Number(values.runs);
const id = randomBytes(3).toString('hex');
const ns = `tp-bench-engage-${id}`;
const session = `bench-engage-${id}`;
const tpBin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const env = { ...process.env, TP_REGISTRY: process.env.TP_REGISTRY ?? '127.0.0.1:5000' };
const execFileP = promisify(execFile);
const engine = DockerEngine.connect();

const kubectl = async (...args: string[]): Promise<string> =>
  (await execFileP('kubectl', ['--context', 'tp-lab', ...args], { maxBuffer: 64 << 20 })).stdout;
const tp = async (...args: string[]): Promise<string> =>
  (await execFileP(process.execPath, ['--', tpBin, ...args], { env, maxBuffer: 64 << 20 })).stdout;

function samplesImage(): string {
  return `127.0.0.1:5000/tp-lab/samples:${readFileSync('/var/lib/tp-lab/samples.tag', 'utf8').trim()}`;
}

/** `bash` in the dnsutils pod: one HTTP/1.0 request per line of output, `local` or the pod that answered. */
function requestScript(n: number): string {
  return [
    `for i in $(seq ${n}); do`,
    `  s=$(date +%s%N)`,
    // 2 s at most: a request to a pod kube-proxy has not yet dropped would wait out TCP's retries.
    `  body=$(timeout 2 bash -c 'exec 3<>/dev/tcp/echo.${ns}/80 && printf "GET / HTTP/1.0\\r\\nHost: echo\\r\\n\\r\\n" >&3 && cat <&3') || { echo fail; continue; }`,
    `  e=$(date +%s%N)`,
    `  case "$body" in *'"LOCAL": "yes"'*) who=local ;; *) who=$(printf '%s' "$body" | sed -n 's/.*"pod": *"\\([^"]*\\)".*/\\1/p' | head -n1) ;; esac`,
    `  echo "$(( (e - s) / 1000 )) $who"`,
    'done',
  ].join('\n');
}

async function fromCluster(n: number): Promise<{ us: number; who: string }[]> {
  const out = await kubectl(
    '-n',
    'samples',
    'exec',
    'deploy/dnsutils',
    '--',
    'bash',
    '-c',
    requestScript(n),
  );
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== 'fail')
    .map((l) => {
      const [us = '0', who = ''] = l.split(' ');
      return { us: Number(us), who };
    });
}

/** Milliseconds from `startedAt` until one request from the cluster gets an answer `ok` takes. */
async function until(ok: (who: string) => boolean, startedAt: number): Promise<number> {
  for (;;) {
    const [r] = await fromCluster(1).catch(() => []);
    if (r !== undefined && ok(r.who)) return performance.now() - startedAt;
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** The pod answering now. */
async function answering(): Promise<string> {
  for (;;) {
    const [r] = await fromCluster(1).catch(() => []);
    if (r !== undefined && r.who !== 'local' && r.who !== '') return r.who;
    await new Promise((res) => setTimeout(res, 100));
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const median = (xs: number[]): number => pct(xs, 50);

async function main(): Promise<void> {
  const image = samplesImage();
  await kubectl('create', 'namespace', ns);
  const cleanups: (() => Promise<unknown>)[] = [
    () => kubectl('delete', 'namespace', ns, '--wait=false'),
  ];
  try {
    const manifest = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'echo', namespace: ns },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'echo' } },
            template: {
              metadata: { labels: { app: 'echo' } },
              spec: {
                terminationGracePeriodSeconds: 1,
                containers: [
                  {
                    name: 'echo',
                    image,
                    args: ['echo', '-listen', ':8080'],
                    ports: [{ name: 'http', containerPort: 8080 }],
                    env: [{ name: 'ECHO_ENV', value: 'LOCAL' }],
                    readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
                  },
                ],
              },
            },
          },
        },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'echo', namespace: ns },
          spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 'http' }] },
        },
      ],
    };
    const apply = spawn('kubectl', ['--context', 'tp-lab', 'apply', '-f', '-'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    apply.stdin.end(JSON.stringify(manifest));
    await new Promise((r) => apply.once('exit', r));
    await kubectl('-n', ns, 'rollout', 'status', 'deploy/echo', '--timeout=120s');
    await tp('connect', '--docker', '-n', ns, '--name', session);
    cleanups.push(() => tp('quit', '--name', session));
    const daemon = (await engine.listLabelled({ [LABEL_SESSION]: session })).containers.find(
      (c) => c.labels['tp.component'] === 'daemon',
    );
    if (daemon === undefined) throw new Error('no daemon container');
    // The local side: a server in the daemon's namespace, there before each replace.
    const local = await engine.startContainer({
      image,
      cmd: ['echo', '-listen', ':8080'],
      env: { ECHO_ENV: 'LOCAL', LOCAL: 'yes' },
      labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: session }),
      networkMode: `container:${daemon.id}`,
    });
    cleanups.push(() => local.stop());

    const restart: number[] = [];
    const replace: number[] = [];
    const leave: number[] = [];
    let podLatency: number[] = [];
    let tpLatency: number[] = [];
    for (let run = 0; run < runs; run++) {
      // Baseline: the same Deployment rolled by kubectl, until a request from the cluster is
      // answered by its new pod, as tp's figure runs until one is answered locally.
      const old = await answering();
      let t0 = performance.now();
      await kubectl('-n', ns, 'rollout', 'restart', 'deploy/echo');
      await kubectl('-n', ns, 'rollout', 'status', 'deploy/echo', '--timeout=120s');
      restart.push(await until((who) => who !== old && who !== 'local' && who !== '', t0));
      if (run === 0)
        podLatency = (await fromCluster(requests))
          .filter((r) => r.who !== 'local')
          .map((r) => r.us / 1000);

      t0 = performance.now();
      await tp('replace', 'echo', '--use', session);
      replace.push(await until((who) => who === 'local', t0));
      if (run === 0)
        tpLatency = (await fromCluster(requests))
          .filter((r) => r.who === 'local')
          .map((r) => r.us / 1000);

      t0 = performance.now();
      await tp('leave', 'echo', '--use', session);
      leave.push(await until((who) => who !== 'local' && who !== '', t0));
    }

    const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
    const rows: [string, string, string, string][] = [
      [
        'replace → first local answer (median)',
        s(median(replace)),
        s(median(restart)),
        (median(replace) / median(restart)).toFixed(2),
      ],
      [
        'leave → first answer from the pod (median)',
        s(median(leave)),
        s(median(restart)),
        (median(leave) / median(restart)).toFixed(2),
      ],
      [
        `request latency p50 / p99 (${requests} sequential)`,
        `${pct(tpLatency, 50).toFixed(2)} / ${pct(tpLatency, 99).toFixed(2)} ms`,
        `${pct(podLatency, 50).toFixed(2)} / ${pct(podLatency, 99).toFixed(2)} ms`,
        `${(pct(tpLatency, 50) / pct(podLatency, 50)).toFixed(2)} / ${(pct(tpLatency, 99) / pct(podLatency, 99)).toFixed(2)}`,
      ],
    ];
    console.log(
      `| measure (${runs} runs) | tp | baseline (rollout restart; the original pod) | ratio |`,
    );
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
    console.log(
      `replace minus restart (median): ${((median(replace) - median(restart)) / 1000).toFixed(2)} s (goal: within rollout + 1 s)`,
    );
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

await main();
