// Benchmark of tp intercept and tp wiretap on the lab cluster, each figure against a baseline
// measured in the same run, in a namespace of its own with its own web Deployment and Service:
// - through the agent, not matching: sequential HTTP/1.1 requests from a pod in the cluster to
//   the Service (a connection each, then all on one keep-alive connection) while the session
//   holds an intercept by a header they lack, so each is parsed by the agent and goes on to the
//   app, against the same requests to the app before the intercept.
//   Goal: at most 0.3 ms more at p50 and 1 ms more at p99.
// - throughput: a 256 MiB answer (/bytes) through the agent, not matching, against the same
//   answer before the intercept. Goal: ratio ≥ 0.9.
// - intercepted: the same requests with the header, answered by a local web container joined to
//   the session's daemon, against `kubectl port-forward svc/web` from this host to the app (curl
//   through the API server, as tp's path goes), before the intercept;
// - wiretapped: requests with the header `tp wiretap` copies, against the same requests just
//   before the wiretap. Goal: at most 0.3 ms more at p50.
// - intercept: from `tp intercept` to the first matching request from the cluster answered
//   locally; leave: from `tp leave` to the first answered by the app; both against
//   `kubectl rollout restart` of the Deployment until its new pod answers.
//   Goal: intercept within rollout + 1 s.
// Latencies are p50 / p99 of --requests per run, after 50 not counted (they warm the agent's
// JIT and open the port-forward's first stream); each figure, its difference and its ratio are
// taken per run, and the table gives the median over --runs of each. The requests come from
// perl in a pod of the lab's dnsutils image (it has no curl), timed there with clock_gettime, so
// the client's own cost is in both figures; each has 2 s (a connection to a pod kube-proxy has
// not yet dropped would wait out TCP's retries), and those that fail, the copies the wiretap
// dropped and the times each run took are printed below the table.
//   npx tsx bench/intercept.ts [--requests 200] [--runs 3]
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
if (!Number.isInteger(requests) || requests < 10 || requests > 5000)
  throw new Error('--requests: 10 to 5000');
if (!Number.isInteger(runs) || runs < 1 || runs > 10) throw new Error('--runs: 1 to 10');
const id = randomBytes(3).toString('hex');
const ns = `tp-bench-icpt-${id}`;
const session = `bench-icpt-${id}`;
const tpBin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const env = { ...process.env, TP_REGISTRY: process.env.TP_REGISTRY ?? '127.0.0.1:5000' };
const execFileP = promisify(execFile);
const engine = DockerEngine.connect();
const BYTES = 256 << 20;
const TRANSFERS = 3;
const WARMUP = 50;
const MATCH = 'x-user: someone-else';
const TAP = 'x-user: tap';

/** Aborted on SIGINT or SIGTERM: the commands running then end, and no more start. */
const stopping = new AbortController();
const run = async (file: string, args: string[], signal?: AbortSignal): Promise<string> =>
  (
    await execFileP(file, args, {
      env,
      maxBuffer: 64 << 20,
      timeout: 300_000,
      ...(signal === undefined ? {} : { signal }),
    })
  ).stdout;
const kubectl = (...args: string[]): Promise<string> =>
  run('kubectl', ['--context', 'tp-lab', ...args], stopping.signal);
const tp = (...args: string[]): Promise<string> =>
  run(process.execPath, ['--', tpBin, ...args], stopping.signal);

function samplesImage(): string {
  return `127.0.0.1:5000/tp-lab/samples:${readFileSync('/var/lib/tp-lab/samples.tag', 'utf8').trim()}`;
}

/**
 * The client, perl in the client pod: `mode host path n limit want header...`. Modes: `conn`, a
 * connection each request (Connection: close); `keep`, one keep-alive connection, opened before
 * the clock starts; `until`, a connection each 20 ms until an answer matches the regex `want`,
 * for at most n s. One line per request, printed at the end: `µs status x-served-by pod bytes`,
 * or `fail µs why`. Each request has `limit` s: a connection to a pod kube-proxy has not yet
 * dropped would wait out TCP's retries.
 */
const client = String.raw`
use strict;
use warnings;
use Config;
use Socket qw(:DEFAULT IPPROTO_TCP TCP_NODELAY);
$SIG{PIPE} = 'IGNORE';
my ($mode, $host, $path, $n, $limit, $want, @headers) = @ARGV;
my $clock = $Config{archname} =~ /^aarch64/ ? 113 : 228;
sub now {
  my $t = "\0" x 16;
  syscall($clock, 1, $t) == 0 or die "clock_gettime: $!\n";
  my ($s, $ns) = unpack 'q q', $t;
  return $s * 1e6 + $ns / 1e3;
}
my $ip = inet_aton($host) or die "cannot resolve $host\n";
my $to = sockaddr_in(80, $ip);
my $req = "GET $path HTTP/1.1\r\nHost: $host\r\n" . join('', map { "$_\r\n" } @headers)
  . ($mode eq 'keep' ? '' : "Connection: close\r\n") . "\r\n";
my ($sock, $buf, $body, $phase) = (undef, '', '', '');
sub more { return sysread($sock, $buf, 1 << 20, length $buf) }
sub line {
  my $i;
  until (($i = index($buf, "\r\n")) >= 0) { more() or die "closed during $phase\n" }
  my $l = substr($buf, 0, $i);
  substr($buf, 0, $i + 2, '');
  return $l;
}
sub skip {
  my ($k, $keep) = @_;
  for (;;) {
    my $m = length $buf;
    if ($m >= $k) { $body .= substr($buf, 0, $k) if $keep; substr($buf, 0, $k, ''); return }
    $body .= $buf if $keep;
    $k -= $m;
    $buf = '';
    more() or die "closed during $phase\n";
  }
}
sub dial {
  $phase = 'connect';
  socket($sock, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
  setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
  $buf = '';
  connect($sock, $to) or die "connect: $!\n";
}
sub exchange {
  my $keep = $path !~ /^\/bytes/;
  $body = '';
  $phase = 'write';
  syswrite($sock, $req) == length $req or die "write: $!\n";
  $phase = 'the answer';
  my ($code) = line() =~ m{^HTTP/1\.\d (\d{3})} or die "not HTTP\n";
  my ($who, $len, $chunked) = ('-', undef, 0);
  while ((my $h = line()) ne '') {
    if ($h =~ /^x-served-by:\s*(\S+)/i) { $who = $1 }
    elsif ($h =~ /^content-length:\s*(\d+)/i) { $len = $1 }
    elsif ($h =~ /^transfer-encoding:.*chunked/i) { $chunked = 1 }
  }
  my $bytes = 0;
  if ($chunked) {
    while ((my $k = hex((split /;/, line())[0])) > 0) { skip($k, $keep); skip(2, 0); $bytes += $k }
    1 while line() ne '';
  } elsif (defined $len) { skip($len, $keep); $bytes = $len }
  else { $bytes = length $buf; $buf = ''; while (more()) { $bytes += length $buf; $buf = '' } }
  my $pod = $body =~ /"pod":\s*"([^"]+)"/ ? $1 : '-';
  return "$code $who $pod $bytes";
}
my (@out, $open);
my $start = now();
for (my $i = 0; $mode eq 'until' ? now() - $start < $n * 1e6 : $i < $n; $i++) {
  my ($r, $t) = (undef, now());
  my $line = eval {
    local $SIG{ALRM} = sub { die "timeout in $phase\n" };
    alarm $limit;
    if ($mode eq 'keep' && !$open) { dial(); $open = 1 }
    my $t0 = now();
    dial() if $mode ne 'keep';
    $r = exchange();
    my $t1 = now();
    close $sock if $mode ne 'keep';
    alarm 0;
    sprintf '%.1f %s', $t1 - $t0, $r;
  };
  alarm 0;
  if (!defined $line) {
    (my $e = $@) =~ s/\s+$//;
    $e =~ s/\s+/_/g;
    $line = sprintf 'fail %.1f %s', now() - $t, $e;
    close $sock if defined $sock;
    $open = 0;
  }
  push @out, $line;
  if ($mode eq 'until') {
    last if defined $r && $r =~ /$want/;
    select(undef, undef, undef, 0.02);
  }
}
print "$_\n" for @out;
`;

interface Answer {
  us: number;
  code: number;
  who: string;
  pod: string;
  bytes: number;
}
interface Batch {
  ok: Answer[];
  /** Each failed request: why, and after how long. */
  failed: string[];
}

/** The client's lines: the answers less the first `skip` lines', every failure. */
function parse(out: string, skip = 0): Batch {
  const ok: Answer[] = [];
  const failed: string[] = [];
  for (const [i, l] of out.trim().split('\n').entries()) {
    if (l === '') continue;
    const [us = '', code = '', who = '', pod = '', bytes = ''] = l.split(' ');
    const warm = i < skip ? ', warming up' : '';
    if (us === 'fail')
      failed.push(`${who.replace(/_/g, ' ')} after ${ms(Number(code) / 1000)} ms${warm}`);
    else if (i >= skip)
      ok.push({ us: Number(us), code: Number(code), who, pod, bytes: Number(bytes) });
  }
  return { ok, failed };
}

async function fromCluster(
  mode: 'conn' | 'keep' | 'until',
  path: string,
  n: number,
  headers: string[] = [],
  want = '',
  limit = 2,
  skip = 0,
): Promise<Batch> {
  const args = [mode, `web.${ns}`, path, String(n), String(limit), want, ...headers];
  const out = await kubectl('-n', ns, 'exec', 'deploy/client', '--', 'perl', '-e', client, ...args);
  return parse(out, skip);
}

/** Milliseconds from `startedAt` until a request from the cluster is answered as `want` says. */
async function until(
  want: string,
  startedAt: number,
  headers: string[] = [],
): Promise<{ ms: number; last: Answer; failed: string[] }> {
  const b = await fromCluster('until', '/', 60, headers, want);
  const last = b.ok.at(-1);
  if (
    last === undefined ||
    !new RegExp(want).test(`${last.code} ${last.who} ${last.pod} ${last.bytes}`)
  )
    throw new Error(`no answer as /${want}/ in 60 s: ${b.failed.join(', ')}`);
  return { ms: performance.now() - startedAt, last, failed: b.failed };
}

/**
 * `requests` sequential requests from the cluster, after WARMUP not counted; the milliseconds
 * each took, and those that failed (the warm-up's too) or were answered by someone but `who`.
 */
async function latency(
  mode: 'conn' | 'keep',
  headers: string[],
  who: string,
): Promise<{ ms: number[]; bad: string[] }> {
  const b = await fromCluster(mode, '/', WARMUP + requests, headers, '', 2, WARMUP);
  const good = b.ok.filter((a) => a.code === 200 && a.who === who);
  const wrong = b.ok.filter((a) => !good.includes(a)).map((a) => `${a.code} from ${a.who}`);
  return { ms: good.map((a) => a.us / 1000), bad: [...b.failed, ...wrong] };
}

/** MiB/s of the 256 MiB answer, the median of a few, and how many failed. */
async function throughput(): Promise<{ mibs: number; bad: string[] }> {
  const b = await fromCluster('conn', `/bytes?n=${BYTES}`, TRANSFERS, [], '', 120);
  const good = b.ok.filter((a) => a.code === 200 && a.bytes === BYTES);
  const wrong = b.ok.filter((a) => !good.includes(a)).map((a) => `${a.code}, ${a.bytes} bytes`);
  return {
    mibs: median(good.map((a) => BYTES / (1 << 20) / (a.us / 1e6))),
    bad: [...b.failed, ...wrong],
  };
}

/** `kubectl port-forward svc/web` from this host; the local port and a way to end it. */
async function portForward(): Promise<{ port: number; stop: () => void }> {
  const pf = spawn(
    'kubectl',
    ['--context', 'tp-lab', '-n', ns, 'port-forward', '--address', '127.0.0.1', 'svc/web', ':80'],
    { stdio: ['ignore', 'pipe', 'inherit'], signal: stopping.signal },
  );
  const stop = (): void => {
    if (pf.exitCode === null) pf.kill();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        reject(new Error('kubectl port-forward did not start in 30 s'));
      }, 30_000);
      pf.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /127\.0\.0\.1:(\d+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      pf.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`kubectl port-forward exited with ${String(code)}`));
      });
    });
    return { port, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

/** The same requests as `latency`, by curl on this host through a port-forward. */
async function fromHost(
  port: number,
  mode: 'conn' | 'keep',
  headers: string[],
): Promise<{ ms: number[]; bad: string[] }> {
  const url = `http://127.0.0.1:${port}/`;
  const { stdout } = await execFileP(
    'curl',
    [
      '-sS',
      '--max-time',
      '120',
      '-w',
      '%{time_total} %{http_code} %header{x-served-by}\\n',
      ...[...headers, ...(mode === 'conn' ? ['Connection: close'] : [])].flatMap((h) => ['-H', h]),
      ...Array.from({ length: WARMUP + requests }, () => ['-o', '/dev/null', url]).flat(),
    ],
    { maxBuffer: 16 << 20, timeout: 180_000, signal: stopping.signal },
  );
  const counted = stdout
    .trim()
    .split('\n')
    .slice(WARMUP)
    .map((l) => l.split(' '));
  const good = counted.filter(([, code, who]) => code === '200' && who === 'cluster');
  return {
    ms: good.map(([s = '0']) => Number(s) * 1000),
    bad: counted.filter((l) => !good.includes(l)).map(([, code, who]) => `${code} from ${who}`),
  };
}

/** Copies the session's wiretap made and dropped, as tp status shows them. */
async function copies(): Promise<{ copied: number; dropped: number }> {
  const m = /(\d+) copied, (\d+) dropped/.exec(await tp('status', '--name', session));
  return { copied: Number(m?.[1] ?? 0), dropped: Number(m?.[2] ?? 0) };
}

const ms = (x: number): string => x.toFixed(2);
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (xs: number[]): number => pct(xs, 50);

interface Lat {
  p50: number;
  p99: number;
}
const lat = (ms: number[]): Lat => ({ p50: pct(ms, 50), p99: pct(ms, 99) });
/** One figure of one run: tp's and its baseline's. */
interface Pair<T> {
  tp: T;
  base: T;
}

/** Cleanups, last first, run once: on the way out, or on a signal (each awaits the same run). */
const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | undefined;
const cleanUp = (): Promise<void> =>
  (cleaning ??= (async () => {
    for (const c of cleanups.reverse())
      await c().catch((err: unknown) => {
        console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
      });
  })());
// Handled for as long as the process lives: tsx relays a signal the child also got, and a
// second one with no handler left would end the process in the middle of the cleanup.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping.signal.aborted) return;
    console.error(`${signal}: cleaning up ${ns} and ${session}`);
    stopping.abort();
    void cleanUp().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const image = samplesImage();
  const dnsutils = readFileSync('/var/lib/tp-lab/dnsutils.ref', 'utf8').trim();
  await kubectl('create', 'namespace', ns);
  cleanups.push(() =>
    run('kubectl', ['--context', 'tp-lab', 'delete', 'namespace', ns, '--wait=false']),
  );
  const manifest = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [
                {
                  name: 'web',
                  image,
                  args: ['web', '-listen', ':8080'],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  // POD_NAME: the answer names its pod, so a new one is told from the old.
                  env: [
                    { name: 'WHO', value: 'cluster' },
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  ],
                  readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: ns },
        spec: {
          selector: { app: 'web' },
          ports: [{ name: 'http', port: 80, targetPort: 'http' }],
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'client', namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'client' } },
          template: {
            metadata: { labels: { app: 'client' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [{ name: 'client', image: dnsutils, command: ['sleep', 'infinity'] }],
            },
          },
        },
      },
    ],
  };
  const apply = spawn('kubectl', ['--context', 'tp-lab', 'apply', '-f', '-'], {
    stdio: ['pipe', 'ignore', 'inherit'],
    signal: stopping.signal,
  });
  apply.stdin.end(JSON.stringify(manifest));
  const applied = await new Promise((r) => apply.once('exit', r));
  if (applied !== 0) throw new Error(`kubectl apply exited with ${String(applied)}`);
  for (const d of ['deploy/web', 'deploy/client'])
    await kubectl('-n', ns, 'rollout', 'status', d, '--timeout=120s');
  cleanups.push(() => engine.removeLabelled({ [LABEL_SESSION]: session }));
  cleanups.push(() => run(process.execPath, ['--', tpBin, 'quit', '--name', session]));
  await tp('connect', '--docker', '-n', ns, '--name', session);
  const daemon = (await engine.listLabelled({ [LABEL_SESSION]: session })).containers.find(
    (c) => c.labels['tp.component'] === 'daemon',
  );
  if (daemon === undefined) throw new Error('no daemon container');
  // The local side: a web server in the daemon's namespace, answering as `local`.
  await engine.startContainer({
    image,
    cmd: ['web', '-listen', ':8080'],
    env: { WHO: 'local' },
    labels: tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: session }),
    networkMode: `container:${daemon.id}`,
  });

  const restart: number[] = [];
  const intercept: number[] = [];
  const interceptCmd: number[] = [];
  const leaveCmd: number[] = [];
  const leave: number[] = [];
  const plainConn: Pair<Lat>[] = [];
  const plainKeep: Pair<Lat>[] = [];
  const matchConn: Pair<Lat>[] = [];
  const matchKeep: Pair<Lat>[] = [];
  const tapConn: Pair<Lat>[] = [];
  const tapKeep: Pair<Lat>[] = [];
  const bytes: Pair<number>[] = [];
  const bad: Record<string, string[]> = {};
  const count = (what: string, reasons: string[]): void => {
    bad[what] = [...(bad[what] ?? []), ...reasons];
  };
  const tapped = { sent: 0, copied: 0, dropped: 0 };
  const measure = async (
    what: string,
    mode: 'conn' | 'keep',
    headers: string[],
    who: string,
  ): Promise<Lat> => {
    const r = await latency(mode, headers, who);
    count(what, r.bad);
    return lat(r.ms);
  };

  for (let run = 0; run < runs; run++) {
    // Baseline: the Deployment rolled by kubectl, until a request from the cluster is answered
    // by its new pod, as tp's figures run until the answer comes from where they send it.
    const old = (await until('^200 cluster ', performance.now())).last.pod;
    let t0 = performance.now();
    await kubectl('-n', ns, 'rollout', 'restart', 'deploy/web');
    await kubectl('-n', ns, 'rollout', 'status', 'deploy/web', '--timeout=120s');
    const restarted = await until(`^200 cluster (?!${old} )`, t0);
    restart.push(restarted.ms);
    count('waiting for the restarted pod', restarted.failed);

    // Before: straight to the app.
    const before = {
      plainConn: await measure('before, a connection each', 'conn', [], 'cluster'),
      plainKeep: await measure('before, keep-alive', 'keep', [], 'cluster'),
      bytes: await throughput(),
      pfConn: { p50: NaN, p99: NaN },
      pfKeep: { p50: NaN, p99: NaN },
    };
    count('before, 256 MiB', before.bytes.bad);
    const pf = await portForward();
    try {
      for (const mode of ['conn', 'keep'] as const) {
        const r = await fromHost(pf.port, mode, [MATCH]);
        count(`port-forward, ${mode}`, r.bad);
        before[mode === 'conn' ? 'pfConn' : 'pfKeep'] = lat(r.ms);
      }
    } finally {
      pf.stop();
    }

    // The intercept: requests without its header go through the agent to the app.
    t0 = performance.now();
    await tp('intercept', 'web', '--http-header', MATCH.replace(': ', '='), '--use', session);
    interceptCmd.push(performance.now() - t0);
    const intercepted = await until('^200 local ', t0, [MATCH]);
    intercept.push(intercepted.ms);
    count('waiting for the intercept', intercepted.failed);
    plainConn.push({
      tp: await measure('through the agent, a connection each', 'conn', [], 'cluster'),
      base: before.plainConn,
    });
    plainKeep.push({
      tp: await measure('through the agent, keep-alive', 'keep', [], 'cluster'),
      base: before.plainKeep,
    });
    const through = await throughput();
    count('through the agent, 256 MiB', through.bad);
    bytes.push({ tp: through.mibs, base: before.bytes.mibs });
    matchConn.push({
      tp: await measure('intercepted, a connection each', 'conn', [MATCH], 'local'),
      base: before.pfConn,
    });
    matchKeep.push({
      tp: await measure('intercepted, keep-alive', 'keep', [MATCH], 'local'),
      base: before.pfKeep,
    });

    t0 = performance.now();
    await tp('leave', 'web', '--use', session);
    leaveCmd.push(performance.now() - t0);
    const left = await until('^200 cluster ', t0, [MATCH]);
    leave.push(left.ms);
    count('waiting after leave', left.failed);

    // The wiretap, against the same requests just before it.
    const tapBefore = {
      conn: await measure('before the wiretap, a connection each', 'conn', [TAP], 'cluster'),
      keep: await measure('before the wiretap, keep-alive', 'keep', [TAP], 'cluster'),
    };
    await tp('wiretap', 'web', '--http-header', TAP.replace(': ', '='), '--use', session);
    // The Service reaches the agent once a request has been copied.
    const deadline = performance.now() + 60_000;
    for (;;) {
      count('waiting for the wiretap', (await fromCluster('conn', '/', 1, [TAP])).failed);
      if ((await copies()).copied > 0) break;
      if (performance.now() > deadline) throw new Error('no request copied in 60 s');
    }
    const copiedBefore = await copies();
    tapConn.push({
      tp: await measure('wiretapped, a connection each', 'conn', [TAP], 'cluster'),
      base: tapBefore.conn,
    });
    tapKeep.push({
      tp: await measure('wiretapped, keep-alive', 'keep', [TAP], 'cluster'),
      base: tapBefore.keep,
    });
    const copiedAfter = await copies();
    tapped.sent += 2 * (WARMUP + requests);
    tapped.copied += copiedAfter.copied - copiedBefore.copied;
    tapped.dropped += copiedAfter.dropped - copiedBefore.dropped;
    await tp('leave', 'web', '--use', session);
  }

  const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;
  const s = (x: number): string => `${(x / 1000).toFixed(2)} s`;
  const latRow = (name: string, xs: Pair<Lat>[], goal: string): string[] => [
    `${name} p50 / p99 (${requests} sequential)`,
    `${ms(median(xs.map((x) => x.tp.p50)))} / ${ms(median(xs.map((x) => x.tp.p99)))} ms`,
    `${ms(median(xs.map((x) => x.base.p50)))} / ${ms(median(xs.map((x) => x.base.p99)))} ms`,
    `${median(xs.map((x) => x.tp.p50 / x.base.p50)).toFixed(2)} / ${median(xs.map((x) => x.tp.p99 / x.base.p99)).toFixed(2)}`,
    `${signed(median(xs.map((x) => x.tp.p50 - x.base.p50)))} / ${signed(median(xs.map((x) => x.tp.p99 - x.base.p99)))} ms`,
    goal,
  ];
  const timeRow = (name: string, xs: number[], goal: string): string[] => [
    name,
    s(median(xs)),
    s(median(restart)),
    median(xs.map((x, i) => x / (restart[i] ?? NaN))).toFixed(2),
    `${signed(median(xs.map((x, i) => (x - (restart[i] ?? NaN)) / 1000)))} s`,
    goal,
  ];
  const rows: string[][] = [
    latRow('not matching, through the agent; a connection each', plainConn, '≤ +0.3 / +1 ms'),
    latRow('not matching, through the agent; keep-alive', plainKeep, '≤ +0.3 / +1 ms'),
    [
      '256 MiB answer through the agent (median)',
      `${median(bytes.map((x) => x.tp)).toFixed(0)} MiB/s`,
      `${median(bytes.map((x) => x.base)).toFixed(0)} MiB/s`,
      median(bytes.map((x) => x.tp / x.base)).toFixed(2),
      `${signed(median(bytes.map((x) => x.tp - x.base)))} MiB/s`,
      'ratio ≥ 0.9',
    ],
    latRow('intercepted, to the local container; a connection each', matchConn, ''),
    latRow('intercepted, to the local container; keep-alive', matchKeep, ''),
    latRow('wiretapped (each copied); a connection each', tapConn, '≤ +0.3 ms p50'),
    latRow('wiretapped (each copied); keep-alive', tapKeep, '≤ +0.3 ms p50'),
    timeRow('intercept → first local answer (median)', intercept, '≤ rollout + 1 s'),
    timeRow('leave → first answer from the app (median)', leave, ''),
  ];
  console.log(
    `| measure (${runs} runs) | tp | baseline (before; port-forward for intercepted; rollout restart for times) | ratio | tp − baseline | goal |`,
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(
    `tp intercept returned after ${s(median(interceptCmd))}, tp leave after ${s(median(leaveCmd))} (medians); each run: rollout restart ${restart.map(s).join(', ')}; intercept ${intercept.map(s).join(', ')}; leave ${leave.map(s).join(', ')}`,
  );
  console.log(
    `wiretap: ${tapped.copied} of ${tapped.sent} requests copied, ${tapped.dropped} dropped`,
  );
  const failures = Object.entries(bad).filter(([, r]) => r.length > 0);
  if (failures.length === 0) console.log('no request failed or was answered by the wrong side');
  else console.log('failed, or answered by the wrong side:');
  for (const [what, reasons] of failures)
    console.log(`  ${what}: ${reasons.length} (${reasons.slice(0, 5).join('; ')})`);
}

try {
  await main();
} catch (err) {
  if (!stopping.signal.aborted) throw err;
} finally {
  await cleanUp();
}
