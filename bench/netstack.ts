// Benchmark of the userspace network stack, with Docker alone (no cluster): a client in a
// container joined to the daemon's network namespace talks to the daemon's echo handler
// through TUN -> gVisor -> unix socket -> Node, and, as the baseline in the same run, to a
// plain Node echo server on the same namespace's loopback. Figures are ratios to the baseline.
//   npm run bench:netstack [-- --mb 256 --seconds 5 --runs 3 --flow-kb 4096]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { silentProgress } from '../src/cli/progress.js';
import { DockerEngine } from '../src/docker/engine.js';
import { ensureImage } from '../src/images/images.js';
import { LABEL_SESSION, tpLabels } from '../src/lib/labels.js';
import { clientVersion } from '../src/lib/package-info.js';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '256' },
    seconds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    'flow-kb': { type: 'string', default: '4096' },
  },
});
const bytes = Number(values.mb) * 1024 * 1024;
const runs = Number(values.runs);
const client = readFileSync(new URL('../test/fixtures/flow-client.cjs', import.meta.url), 'utf8');
const session = `bench-${Date.now().toString(36)}`;
const labels = tpLabels(clientVersion(), 'test', { [LABEL_SESSION]: session });
const engine = DockerEngine.connect();
const routed = '198.18.0.10';

const { ref: image } = await ensureImage(engine, 'daemon', silentProgress);
const daemon = await engine.startContainer({
  image,
  name: `tp-${session}`,
  cmd: ['selftest', '--route', '198.18.0.0/17', '--echo', '7', '--loopback-echo', '7007'],
  labels,
  capAdd: ['NET_ADMIN'],
  devices: ['/dev/net/tun'],
});

interface ClientResult {
  exact?: boolean;
  ms?: number;
  perSecond?: number;
  ok?: number;
}

async function run(args: string[]): Promise<ClientResult> {
  const r = await engine.runToCompletion(
    {
      image,
      entrypoint: ['node'],
      cmd: ['-e', client, ...args],
      labels,
      networkMode: `container:${daemon.id}`,
    },
    600_000,
  );
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ClientResult;
}

async function rssMiB(): Promise<number> {
  const r = await daemon.exec(['sh', '-c', 'grep VmRSS /proc/1/status']);
  return Number(/(\d+)/.exec(r.stdout)?.[1] ?? 0) / 1024;
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

try {
  await daemon.waitForLog(/selftest ready/);
  const idle = await rssMiB();

  const mbps = async (host: string, port: string): Promise<number> => {
    const xs: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      const r = await run(['tcp-echo', host, port, String(bytes)]);
      if (r.exact !== true) throw new Error(`echo was not exact: ${JSON.stringify(r)}`);
      xs.push(bytes / 1024 / 1024 / ((r.ms ?? 1) / 1000));
    }
    return median(xs);
  };
  const stackTput = await mbps(routed, '7');
  const loopTput = await mbps('127.0.0.1', '7007');
  const stackRate = (await run(['tcp-rate', routed, '7', values.seconds])).perSecond ?? 0;
  const loopRate = (await run(['tcp-rate', '127.0.0.1', '7007', values.seconds])).perSecond ?? 0;

  // Memory under load: 200 flows at once, each echoing --flow-kb, sampled while they run.
  let peak = 0;
  const sampling = { on: true };
  const sampler = (async () => {
    while (sampling.on) {
      peak = Math.max(peak, await rssMiB());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const flowKb = Number(values['flow-kb']);
  const load = await run(['tcp-concurrent', routed, '7', '200', String(flowKb * 1024)]);
  sampling.on = false;
  await sampler;

  const row = (name: string, value: number, unit: string, base: number): string =>
    `| ${name} | ${value.toFixed(1)} ${unit} | ${base.toFixed(1)} ${unit} | ${(value / base).toFixed(2)} |`;
  console.log(
    `netstack benchmark: ${values.mb} MiB echoed per run, median of ${runs}; ${values.seconds} s of connections\n`,
  );
  console.log('| measure | through the stack | loopback baseline | ratio |');
  console.log('|---|---|---|---|');
  console.log(row('TCP echo throughput (one direction)', stackTput, 'MiB/s', loopTput));
  console.log(
    row('connections per second (connect, 1-byte echo, close)', stackRate, '/s', loopRate),
  );
  console.log(
    `\n| daemon memory (RSS) | MiB |\n|---|---|\n| idle | ${idle.toFixed(1)} |\n| 200 flows of ${String(flowKb)} KiB at once (${String(load.ok)}/200 exact) | ${peak.toFixed(1)} |`,
  );
} finally {
  await daemon.stop();
  await engine.removeLabelled({ [LABEL_SESSION]: session });
}
