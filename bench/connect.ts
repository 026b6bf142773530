// Benchmark of `tp connect --docker` against `kubectl port-forward` on the lab cluster, each
// figure a ratio to the baseline measured in the same run. tp's client is curl in a container
// joined to the daemon; the baseline's is the same curl, from the same image, in a container
// on the host's network, talking to kubectl's local port. Both reach the same pods (bulk,
// echo); tp through their service, as a user would. The same runs are repeated with 2 x
// --delay-ms added to every round trip to the API server (bench/delay-proxy.ts), for tp and
// kubectl alike. tp uses a manager namespace of its own, so the first connect is cold and the
// shared tp-system is never touched.
//   npx tsx bench/connect.ts [--quick] [--delay-ms 10] [--no-delay]
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { silentProgress } from '../src/cli/progress.js';
import { DockerEngine, type RunningContainer } from '../src/docker/engine.js';
import { LABEL_SESSION, tpLabels } from '../src/lib/labels.js';
import { clientVersion } from '../src/lib/package-info.js';
import { settingsFromEnv } from '../src/session/config.js';
import { agentImage, daemonImage } from '../src/session/images.js';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'delay-ms': { type: 'string', default: '10' },
    'no-delay': { type: 'boolean', default: false },
    namespace: { type: 'string', default: 'samples' },
  },
});

const sizes = values.quick
  ? { mib: 64, runs: 1, requests: 100, delayedRequests: 40, flows: 8, flowMib: 16 }
  : { mib: 256, runs: 3, requests: 500, delayedRequests: 200, flows: 8, flowMib: 64 };
const delayMs = Number(values['delay-ms']);
const ns = values.namespace;
const runId = Date.now().toString(36);
const managerNs = `tp-bench-${runId}`;
const clientLabels = tpLabels(clientVersion(), 'test', {
  [LABEL_SESSION]: `bench-${runId}-client`,
});
const tpBin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const tpEnv: NodeJS.ProcessEnv = {
  ...process.env,
  TP_REGISTRY: process.env.TP_REGISTRY ?? '127.0.0.1:5000',
};
const engine = DockerEngine.connect();
const execFileP = promisify(execFile);
const MiB = 1024 * 1024;

// ---- cleanup: everything started is undone in reverse order, also on Ctrl-C ----

const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
const defer = (what: string, fn: () => Promise<unknown>): void => {
  cleanups.push({ what, fn });
};
let cleaning: Promise<void> | undefined;
const cleanUp = (): Promise<void> =>
  (cleaning ??= (async () => {
    for (let c = cleanups.pop(); c !== undefined; c = cleanups.pop()) {
      try {
        await c.fn();
      } catch (err) {
        console.error(`cleanup of ${c.what} failed: ${String(err)}`);
      }
    }
  })());
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

// ---- processes ----

async function run(
  cmd: string,
  args: string[],
  timeoutMs = 120_000,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(cmd, args, { env: tpEnv, timeout: timeoutMs, maxBuffer: 64 * MiB });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  }
}

const tp = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
  run(process.execPath, [tpBin, ...args]);
const kubectl = (kubeconfig: string | undefined, args: string[]) =>
  run('kubectl', [...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]), ...args]);

interface PortForward {
  port: number;
  pid: number;
  /** ms from spawning kubectl to its "Forwarding from" line. */
  readyMs: number;
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      resolve(false);
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function portForward(
  kubeconfig: string | undefined,
  pod: string,
  port: number,
): Promise<PortForward> {
  const started = performance.now();
  const child = spawn(
    'kubectl',
    [
      ...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]),
      '-n',
      ns,
      'port-forward',
      `pod/${pod}`,
      `0:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('kubectl port-forward did not start');
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 5000))) child.kill('SIGKILL');
    })());
  defer(`kubectl port-forward ${pod}`, stop);
  let out = '';
  const localPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`kubectl port-forward ${pod} printed no port in 30 s:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward ${pod} exited (${String(code)}):\n${out}`));
    });
  });
  return { port: localPort, pid, readyMs: performance.now() - started, stop };
}

async function tpConnect(name: string, kubeconfig: string | undefined): Promise<number> {
  defer(`tp session ${name}`, () => tp(['quit', '--name', name]));
  const started = performance.now();
  await tp([
    'connect',
    '--docker',
    '-n',
    ns,
    '--name',
    name,
    '--manager-namespace',
    managerNs,
    ...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]),
  ]);
  return performance.now() - started;
}

// ---- clients (curl in containers) ----

let clientImage = '';

/**
 * Builds and publishes the images once and hands them to every tp command by id, so that no
 * timed connect builds, and a rebuild of dist/ during the run changes nothing here.
 */
async function pinImages(): Promise<void> {
  const settings = settingsFromEnv(tpEnv);
  const daemonRef = await daemonImage(engine, settings, silentProgress);
  const agent = await agentImage(engine, settings, silentProgress);
  await agent.publish();
  const id = (await run('docker', ['image', 'inspect', '-f', '{{.Id}}', daemonRef])).stdout.trim();
  tpEnv.TP_DAEMON_IMAGE = id;
  tpEnv.TP_AGENT_IMAGE = agent.ref;
  clientImage = id;
}

async function clientContainer(networkMode: string): Promise<RunningContainer> {
  const c = await engine.startContainer({
    image: clientImage,
    entrypoint: ['sleep', 'infinity'],
    networkMode,
    labels: clientLabels,
  });
  defer(`client container ${c.name}`, () => c.stop());
  return c;
}

async function sh(c: RunningContainer, script: string): Promise<{ out: string; err: string }> {
  const r = await c.exec(['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${script}\n${r.stdout}${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

/** CPU seconds of the shell's children, from `times` (second line). */
function childCpu(out: string): number {
  const line = out.trim().split('\n').pop() ?? '';
  let s = 0;
  for (const m of line.matchAll(/(\d+)m([\d.]+)s/g)) s += Number(m[1]) * 60 + Number(m[2]);
  return s;
}

/**
 * Milliseconds from `startedAt` (performance.now()) to the first successful GET, from a fresh
 * container: the container prints the wall clock at success, so its removal is not counted.
 */
async function firstRequest(networkMode: string, url: string, startedAt: number): Promise<number> {
  const epochAtStart = Date.now() - (performance.now() - startedAt);
  const r = await engine.runToCompletion(
    {
      image: clientImage,
      entrypoint: ['sh', '-c'],
      cmd: [
        `i=0; until curl -sf -o /dev/null --max-time 5 '${url}'; do i=$((i+1)); [ $i -ge 300 ] && exit 1; sleep 0.05; done; date +%s%N`,
      ],
      networkMode,
      labels: clientLabels,
    },
    60_000,
  );
  if (r.exitCode !== 0) throw new Error(`no successful request to ${url}:\n${r.stderr}`);
  return Number(r.stdout.trim()) / 1e6 - epochAtStart;
}

async function download(c: RunningContainer, url: string, bytes: number) {
  const { out } = await sh(
    c,
    `curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}\\n' '${url}/bytes?n=${bytes}'; times`,
  );
  const [code, size, secs] = (out.split('\n')[0] ?? '').split(' ');
  if (code !== '200' || Number(size) !== bytes) throw new Error(`download from ${url}: ${out}`);
  return { mibps: bytes / MiB / Number(secs), seconds: Number(secs), clientCpu: childCpu(out) };
}

async function latencies(c: RunningContainer, url: string, n: number, fresh: boolean) {
  const header = fresh ? `-H 'Connection: close'` : '';
  // Keep-alive sends one request more and drops the first, which opened the connection.
  const first = fresh ? 1 : 0;
  const { err } = await sh(
    c,
    `curl -sS ${header} -w '%{stderr}%{http_code} %{num_connects} %{time_total}\\n' '${url}/?i=[${first}-${n}]' >/dev/null`,
  );
  const rows = [...err.matchAll(/^(\d{3}) (\d+) ([\d.]+)$/gm)].slice(1 - first);
  const ok = rows.filter((m) => m[1] === '200');
  if (ok.length !== n) throw new Error(`${ok.length}/${n} requests to ${url} succeeded:\n${err}`);
  const connects = ok.reduce((a, m) => a + Number(m[2]), 0);
  // Connection: close must open a connection per request, keep-alive only the first.
  if (fresh ? connects !== n : connects > 0) {
    throw new Error(`${connects} connections for ${n} requests (fresh=${String(fresh)})`);
  }
  const ms = ok.map((m) => Number(m[3]) * 1000).sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

async function parallel(c: RunningContainer, url: string, flows: number, bytes: number) {
  const { out, err } = await sh(
    c,
    `s=$(date +%s%N); curl -sS --no-progress-meter --parallel --parallel-immediate --parallel-max ${flows} -w '%{stderr}%{http_code} %{size_download}\\n' '${url}/bytes?n=${bytes}&i=[1-${flows}]' >/dev/null; e=$(date +%s%N); echo "wall $((e-s))"; times`,
  );
  const done = [...err.matchAll(/(?:^|\s)200 (\d+)$/gm)].filter(
    (m) => Number(m[1]) === bytes,
  ).length;
  const wallNs = Number(/wall (\d+)/.exec(out)?.[1] ?? NaN);
  if (done !== flows) throw new Error(`${done}/${flows} parallel downloads complete:\n${err}`);
  return { mibps: (flows * bytes) / MiB / (wallNs / 1e9), clientCpu: childCpu(out) };
}

// ---- measuring processes on the host ----

function procRead(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(procRead(pid, 'status'))?.[1] ?? 0) / 1024;
}

/** What `docker stats` shows: the cgroup's usage less its inactive page cache (cgroup v1 or v2). */
function cgroupMiB(containerId: string): number {
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  const v1 = `/sys/fs/cgroup/memory/docker/${containerId}`;
  const v2 = `/sys/fs/cgroup/system.slice/docker-${containerId}.scope`;
  const usage = Number(read(`${v1}/memory.usage_in_bytes`) || read(`${v2}/memory.current`) || 0);
  const stat = read(`${v1}/memory.stat`) || read(`${v2}/memory.stat`);
  const inactive = Number(/^(?:total_)?inactive_file (\d+)$/m.exec(stat)?.[1] ?? 0);
  return (usage - inactive) / MiB;
}

const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  const stat = procRead(pid, 'stat');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / CLK_TCK;
}

/** Busy CPU seconds of the whole machine (every core), to see how loaded it was. */
function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
    CLK_TCK
  );
}

function findPids(match: (cmdline: string, pid: number) => boolean): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const cmdline = procRead(pid, 'cmdline').replaceAll('\0', ' ').trim();
    if (cmdline !== '' && match(cmdline, pid)) out.push(pid);
  }
  return out;
}

async function containerPid(name: string): Promise<{ pid: number; id: string }> {
  const { stdout } = await run('docker', ['inspect', '-f', '{{.State.Pid}} {{.Id}}', name]);
  const [pid, id] = stdout.trim().split(' ');
  return { pid: Number(pid), id: id ?? '' };
}

type CpuSnapshot = Map<string, number>;

class CpuMeter {
  constructor(private readonly pids: Map<string, number>) {}

  snapshot(): CpuSnapshot {
    const s: CpuSnapshot = new Map([['machine (all processes)', machineBusySeconds()]]);
    for (const [name, pid] of this.pids) s.set(name, cpuSeconds(pid));
    return s;
  }

  static add(total: CpuSnapshot, before: CpuSnapshot, after: CpuSnapshot): void {
    for (const [k, v] of after) total.set(k, (total.get(k) ?? 0) + v - (before.get(k) ?? v));
  }
}

/** The highest value of `read` while `work` runs, sampled every 100 ms. */
async function peakDuring<T>(
  read: () => number[],
  work: () => Promise<T>,
): Promise<{ result: T; peaks: number[] }> {
  let peaks = read();
  const sampling = { on: true };
  const sampler = (async () => {
    while (sampling.on) {
      const now = read();
      peaks = peaks.map((p, i) => Math.max(p, now[i] ?? 0));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return { result: await work(), peaks };
  } finally {
    sampling.on = false;
    await sampler;
  }
}

// ---- figures ----

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
}
const median = (xs: number[]): number =>
  percentile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

interface Row {
  what: string;
  tp: number;
  base: number;
  unit: string;
  digits?: number;
}
const rows: Row[] = [];
interface Profile {
  cpu: CpuSnapshot;
  wall: number;
  bytes: number;
}
/** By condition, then scenario ("tp, 1 flow"): CPU seconds by process, wall seconds, bytes. */
const profiles = new Map<string, Map<string, Profile>>();
const notes: string[] = [];

// ---- the lab: targets, kubeconfig, the API server's round trip ----

interface Targets {
  bulkPod: string;
  echoPod: string;
  bulkUrl: string;
  echoUrl: string;
}

async function targets(): Promise<Targets> {
  const pod = async (app: string): Promise<string> =>
    (
      await kubectl(undefined, [
        '-n',
        ns,
        'get',
        'pods',
        '-l',
        `app=${app}`,
        '--field-selector=status.phase=Running',
        '-o',
        'jsonpath={.items[0].metadata.name}',
      ])
    ).stdout.trim();
  const clusterIp = async (svc: string): Promise<string> =>
    (
      await kubectl(undefined, ['-n', ns, 'get', 'svc', svc, '-o', 'jsonpath={.spec.clusterIP}'])
    ).stdout.trim();
  // ClusterIPs, not names: a DNS lookup per request would be measured as tunnel latency.
  return {
    bulkPod: await pod('bulk'),
    echoPod: await pod('echo'),
    bulkUrl: `http://${await clusterIp('bulk')}:80`,
    echoUrl: `http://${await clusterIp('echo')}:80`,
  };
}

interface KubeconfigJson {
  clusters: { cluster: Record<string, string> }[];
  users: { user: Record<string, string> }[];
}

async function currentKubeconfig(): Promise<KubeconfigJson> {
  const { stdout } = await kubectl(undefined, [
    'config',
    'view',
    '--raw',
    '--minify',
    '--flatten',
    '-o',
    'json',
  ]);
  return JSON.parse(stdout) as KubeconfigJson;
}

/** Median ms of keep-alive GET /version, after one warm-up: one round trip plus the server. */
async function versionRtt(kc: KubeconfigJson, server: string, n = 10): Promise<number> {
  const b64 = (k: string, u: Record<string, string> | undefined): Buffer | undefined => {
    const v = u?.[k];
    return v === undefined ? undefined : Buffer.from(v, 'base64');
  };
  const cluster = kc.clusters[0]?.cluster;
  const user = kc.users[0]?.user;
  const ca = b64('certificate-authority-data', cluster);
  const cert = b64('client-certificate-data', user);
  const key = b64('client-key-data', user);
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 1,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  });
  const get = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request(new URL('/version', server), { agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.once('end', () => {
          resolve(performance.now() - t0);
        });
      });
      req.once('error', reject);
      req.end();
    });
  try {
    await get();
    const xs: number[] = [];
    for (let i = 0; i < n; i++) xs.push(await get());
    return median(xs);
  } finally {
    agent.destroy();
  }
}

async function kubectlVersionMs(kubeconfig: string | undefined): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await kubectl(kubeconfig, ['get', '--raw', '/version']);
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

// ---- one condition: tp and kubectl port-forward side by side ----

interface Condition {
  label: string;
  kubeconfig?: string;
  requests: number;
  cold: boolean;
}

async function measure(cond: Condition, t: Targets): Promise<void> {
  const suffix = cond.label === '' ? '' : `, ${cond.label}`;
  const add = (what: string, tpv: number, base: number, unit: string, digits?: number): void => {
    rows.push({
      what: `${what}${suffix}`,
      tp: tpv,
      base,
      unit,
      ...(digits === undefined ? {} : { digits }),
    });
  };
  const session = `bench-${runId}-${cond.kubeconfig === undefined ? 'direct' : 'delay'}`;

  if (cond.cold) {
    // A fresh manager namespace: tp-manager is installed (namespace, service account,
    // deployment, pod start; the agent image is already in the node's cache).
    const coldName = `${session}-cold`;
    const t0 = performance.now();
    await tpConnect(coldName, cond.kubeconfig);
    const cold = await firstRequest(`container:${coldName}`, `${t.bulkUrl}/healthz`, t0);
    await tp(['quit', '--name', coldName]);
    // A changed agent image is pulled by the node on its first use, which a cold connect
    // then includes; say so rather than report it as the install.
    const pulled = await kubectl(undefined, [
      '-n',
      managerNs,
      'get',
      'events',
      '--field-selector',
      'reason=Pulled',
      '-o',
      'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
    ]).catch(() => ({ stdout: '' }));
    const pull = /Successfully pulled image .* in ([\dm.]+s)/.exec(pulled.stdout)?.[1];
    notes.push(
      `cold connect: tp-manager installed in the new namespace ${managerNs}; ${pull === undefined ? 'the agent image was already on the node' : `this includes the node pulling the agent image (${pull})`}`,
    );
    rows.push({
      what: 'connect → first request, cold (s)',
      tp: cold / 1000,
      base: NaN,
      unit: 's',
      digits: 2,
    });
  }

  const t0 = performance.now();
  const connectMs = await tpConnect(session, cond.kubeconfig);
  const tpFirst = await firstRequest(`container:${session}`, `${t.bulkUrl}/healthz`, t0);
  const t1 = performance.now();
  const pfBulk = await portForward(cond.kubeconfig, t.bulkPod, 8080);
  const pfFirst = await firstRequest('host', `http://127.0.0.1:${pfBulk.port}/healthz`, t1);
  add('connect → first request, warm (s)', tpFirst / 1000, pfFirst / 1000, 's', 2);
  add('  of which the command itself (s)', connectMs / 1000, pfBulk.readyMs / 1000, 's', 2);
  const pfEcho = await portForward(cond.kubeconfig, t.echoPod, 8080);

  const tpClient = await clientContainer(`container:${session}`);
  const hostClient = await clientContainer('host');
  const tpUrl = { bulk: t.bulkUrl, echo: t.echoUrl };
  const pfUrl = {
    bulk: `http://127.0.0.1:${pfBulk.port}`,
    echo: `http://127.0.0.1:${pfEcho.port}`,
  };
  const daemon = await containerPid(session);

  // Idle: the pool is filled and one request has gone through each.
  await sh(tpClient, `curl -sf -o /dev/null '${tpUrl.echo}/'`);
  await sh(hostClient, `curl -sf -o /dev/null '${pfUrl.bulk}/healthz'`);
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = rssMiB(daemon.pid);
  const idleCg = cgroupMiB(daemon.id);
  const idlePf = rssMiB(pfBulk.pid);

  // Single flow, alternating tp and the baseline so the machine's load drifts over both.
  const bytes = sizes.mib * MiB;
  const tpRates: number[] = [];
  const pfRates: number[] = [];
  const procs = new Map<string, number>([
    ['tp daemon (node + netstack)', daemon.pid],
    ['kube-apiserver', findPids((c) => /(^|\/)kube-apiserver /.test(c))[0] ?? 0],
    ['kubelet', findPids((c) => /(^|\/)kubelet /.test(c))[0] ?? 0],
    ['containerd (CRI streaming)', findPids((c) => /^containerd .*tp-lab/.test(c))[0] ?? 0],
    [
      'tp-manager',
      findPids(
        (c, pid) =>
          c.includes('agent/main.js') &&
          procRead(pid, 'environ').includes(`TP_POD_NAMESPACE=${managerNs}`),
      )[0] ?? 0,
    ],
    ['kubectl port-forward', pfBulk.pid],
    ['bulk server (pod)', findPids((c) => c.startsWith('/samples bulk'))[0] ?? 0],
  ]);
  if (cond.kubeconfig !== undefined) procs.set('delay proxy (this process)', process.pid);
  const meter = new CpuMeter(procs);
  const profiled = async <T extends { clientCpu: number }>(
    key: string,
    moved: number,
    work: () => Promise<T>,
  ): Promise<T> => {
    const before = meter.snapshot();
    const w0 = performance.now();
    const r = await work();
    const after = meter.snapshot();
    const group = profiles.get(cond.label) ?? new Map<string, Profile>();
    profiles.set(cond.label, group);
    const p = group.get(key) ?? { cpu: new Map<string, number>(), wall: 0, bytes: 0 };
    group.set(key, p);
    CpuMeter.add(p.cpu, before, after);
    p.cpu.set('client (curl)', (p.cpu.get('client (curl)') ?? 0) + r.clientCpu);
    p.wall += (performance.now() - w0) / 1000;
    p.bytes += moved;
    return r;
  };
  for (let i = 0; i < sizes.runs; i++) {
    // Alternating, so that the machine's load drifts over both sides alike.
    for (const side of i % 2 === 0 ? (['tp', 'pf'] as const) : (['pf', 'tp'] as const)) {
      if (side === 'tp') {
        const r = await profiled('tp, 1 flow', bytes, () => download(tpClient, tpUrl.bulk, bytes));
        tpRates.push(r.mibps);
      } else {
        const r = await profiled('kubectl, 1 flow', bytes, () =>
          download(hostClient, pfUrl.bulk, bytes),
        );
        pfRates.push(r.mibps);
      }
    }
  }
  add(
    `1 flow, ${sizes.mib} MiB download${sizes.runs > 1 ? ` (median of ${sizes.runs})` : ''}`,
    median(tpRates),
    median(pfRates),
    'MiB/s',
  );

  // Small requests: keep-alive, then a new connection per request (the pool's work).
  const n = cond.requests;
  const tpKa = await latencies(tpClient, tpUrl.echo, n, false);
  const pfKa = await latencies(hostClient, pfUrl.echo, n, false);
  const tpNew = await latencies(tpClient, tpUrl.echo, n, true);
  const pfNew = await latencies(hostClient, pfUrl.echo, n, true);
  add(`GET keep-alive p50 (${n} sequential, ms)`, tpKa.p50, pfKa.p50, 'ms', 2);
  add(`GET keep-alive p99 (ms)`, tpKa.p99, pfKa.p99, 'ms', 2);
  add(`GET new connection each p50 (${n} sequential, ms)`, tpNew.p50, pfNew.p50, 'ms', 2);
  add(`GET new connection each p99 (ms)`, tpNew.p99, pfNew.p99, 'ms', 2);

  // Parallel flows, with the memory of each side sampled while they run.
  const flowBytes = sizes.flowMib * MiB;
  const parKey = `${sizes.flows} flows`;
  const tpPar = await peakDuring(
    () => [rssMiB(daemon.pid), cgroupMiB(daemon.id)],
    () =>
      profiled(`tp, ${parKey}`, sizes.flows * flowBytes, () =>
        parallel(tpClient, tpUrl.bulk, sizes.flows, flowBytes),
      ),
  );
  const pfPar = await peakDuring(
    () => [rssMiB(pfBulk.pid)],
    () =>
      profiled(`kubectl, ${parKey}`, sizes.flows * flowBytes, () =>
        parallel(hostClient, pfUrl.bulk, sizes.flows, flowBytes),
      ),
  );
  add(
    `${sizes.flows} parallel flows × ${sizes.flowMib} MiB, aggregate`,
    tpPar.result.mibps,
    pfPar.result.mibps,
    'MiB/s',
  );
  add('memory idle: daemon RSS vs kubectl RSS', idleRss, idlePf, 'MiB');
  add('memory idle: daemon container (docker stats) vs kubectl RSS', idleCg, idlePf, 'MiB');
  add(
    `memory peak, ${sizes.flows} flows: daemon RSS vs kubectl RSS`,
    tpPar.peaks[0] ?? NaN,
    pfPar.peaks[0] ?? NaN,
    'MiB',
  );
  add(
    `memory peak, ${sizes.flows} flows: daemon container vs kubectl RSS`,
    tpPar.peaks[1] ?? NaN,
    pfPar.peaks[0] ?? NaN,
    'MiB',
  );

  const status = await tp(['status', '--name', session, '--json']).catch(() => undefined);
  if (status !== undefined) {
    const s = JSON.parse(status.stdout) as {
      status?: {
        tunnel?: { opened?: number; dials?: number; failedDials?: number; reconnects?: number };
        flows?: { router?: { tunnelLost?: number } };
      };
    };
    const tn = s.status?.tunnel;
    notes.push(
      `tunnel${suffix}: ${tn?.dials ?? '?'} dials, ${tn?.opened ?? '?'} streams opened, ${tn?.failedDials ?? '?'} failed dials, ${tn?.reconnects ?? '?'} reconnects, ${s.status?.flows?.router?.tunnelLost ?? '?'} flows lost with their stream`,
    );
  }
  await tpClient.stop();
  await hostClient.stop();
  await pfBulk.stop();
  await pfEcho.stop();
  await tp(['quit', '--name', session]);
}

// ---- main ----

const tmp = mkdtempSync(join(tmpdir(), 'tp-bench-'));
defer('temporary files', () => {
  rmSync(tmp, { recursive: true, force: true });
  return Promise.resolve();
});
const load0 = loadavg()[0] ?? 0;
const started = performance.now();
let proxy: DelayProxy | undefined;
try {
  defer(`client containers`, () =>
    engine.removeLabelled({ [LABEL_SESSION]: `bench-${runId}-client` }),
  );
  defer(`namespace ${managerNs}`, () =>
    kubectl(undefined, ['delete', 'namespace', managerNs, '--ignore-not-found', '--wait=false']),
  );
  await pinImages();
  const t = await targets();
  const kc = await currentKubeconfig();
  const server = kc.clusters[0]?.cluster.server ?? '';
  await measure({ label: '', requests: sizes.requests, cold: true }, t);

  if (!values['no-delay']) {
    // The daemon reaches a loopback API server as host.docker.internal (the bridge's
    // gateway) and checks the certificate against 127.0.0.1, so the proxy listens on both,
    // on one port, and the kubeconfig names 127.0.0.1:<port>.
    const gateway = (
      await run('docker', [
        'network',
        'inspect',
        'bridge',
        '-f',
        '{{(index .IPAM.Config 0).Gateway}}',
      ])
    ).stdout.trim();
    const upstream = new URL(server);
    proxy = await startDelayProxy({
      target: { host: upstream.hostname, port: Number(upstream.port || 443) },
      delayMs,
      hosts: ['127.0.0.1', gateway],
    });
    const p = proxy;
    defer('delay proxy', () => p.close());
    const delayed = structuredClone(kc);
    const cluster = delayed.clusters[0]?.cluster;
    if (cluster === undefined) throw new Error('the kubeconfig has no cluster');
    cluster.server = `https://127.0.0.1:${p.port}`;
    const kubeconfig = join(tmp, 'kubeconfig-delayed.json');
    writeFileSync(kubeconfig, JSON.stringify(delayed), { mode: 0o600 });

    const direct = await versionRtt(kc, server);
    const through = await versionRtt(kc, cluster.server);
    const kDirect = await kubectlVersionMs(undefined);
    const kThrough = await kubectlVersionMs(kubeconfig);
    notes.push(
      `delay proxy on ${p.hosts.map((h) => `${h}:${p.port}`).join(' and ')}: keep-alive GET /version ${direct.toFixed(1)} ms direct, ${through.toFixed(1)} ms through it (+${(through - direct).toFixed(1)} ms per round trip); \`kubectl get --raw /version\` ${kDirect.toFixed(0)} ms vs ${kThrough.toFixed(0)} ms`,
    );
    const label = `+${2 * delayMs} ms RTT`;
    await measure({ label, kubeconfig, requests: sizes.delayedRequests, cold: false }, t);
    notes.push(
      `delay proxy carried ${p.stats.connections} connections, ${(p.stats.bytesDown / MiB).toFixed(0)} MiB down, ${(p.stats.bytesUp / MiB).toFixed(0)} MiB up`,
    );
  }
} finally {
  await cleanUp();
}

// ---- report ----

const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
console.log(
  `\n## tp connect --docker vs kubectl port-forward (${values.quick ? 'quick' : 'full'} run, ${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
);
console.log(
  `${cpus().length} CPUs, load average ${load0.toFixed(2)} at the start and ${(loadavg()[0] ?? 0).toFixed(2)} at the end. Ratio = tp / baseline: above 1 is better for throughput, below 1 is better for time and memory.\n`,
);
console.log('| what | tp | kubectl port-forward | ratio |');
console.log('|---|---|---|---|');
for (const r of rows) {
  const d = r.digits ?? 1;
  const ratio = Number.isFinite(r.base) && r.base !== 0 ? fmt(r.tp / r.base, 2) : '—';
  console.log(
    `| ${r.what} | ${fmt(r.tp, d)} ${r.unit} | ${Number.isFinite(r.base) ? `${fmt(r.base, d)} ${r.unit}` : '—'} | ${ratio} |`,
  );
}
for (const [label, group] of profiles) {
  const keys = [...group.keys()];
  const names = new Set(keys.flatMap((k) => [...(group.get(k)?.cpu.keys() ?? [])]));
  const perGiB = (k: string, v: (p: Profile) => number): string => {
    const p = group.get(k);
    return p === undefined ? '—' : fmt(v(p) / (p.bytes / (1024 * MiB)), 2);
  };
  console.log(`\nWhere the time goes, ${label || 'no added delay'}: seconds per GiB downloaded.\n`);
  console.log(`| process (CPU seconds) | ${keys.join(' | ')} |`);
  console.log(`|---|${keys.map(() => '---').join('|')}|`);
  console.log(`| wall clock | ${keys.map((k) => perGiB(k, (p) => p.wall)).join(' | ')} |`);
  for (const name of names) {
    console.log(
      `| ${name} | ${keys.map((k) => perGiB(k, (p) => p.cpu.get(name) ?? 0)).join(' | ')} |`,
    );
  }
}
if (notes.length > 0) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
