/**
 * tp's DNS answers as the cluster's DNS does: the same dig and getent queries, from a Debian
 * container joined to the daemon and from a pod in `samples` (both tp-lab/dnsutils), must get
 * the same answers (TTLs aside, which count down).
 */
import test from 'ava';
import type { ConnectResult } from '../../src/session/connect.js';
import type { StatusReport } from '../../src/session/status.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { engine } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { dnsutilsImage } from '../helpers/lab.js';
import { Joined, json, sessionName, tpLab } from '../helpers/session.js';

const name = sessionName('dns');
let joined: Joined;

/** A query's answer as one comparable text: dig's status and sorted answers, or getent's. */
const dig = (args: string): string =>
  `dig +nocmd +noall +comments +answer +nottlid ${args} | sed -n -e '/status:/{s/.*status: \\([A-Z]*\\),.*/status \\1/p;d;}' -e '/^[^;]/p' | sort`;
/** getent's lines, sorted, and its own exit status (2: not found). */
const getent = (args: string, filter = 'cat'): string =>
  `out=$(getent ${args}); echo "exit $?"; echo "$out" | ${filter} | sort -u`;

/** Addresses looked up in the cluster before the queries run. */
interface Found {
  echoIP: string;
  storePodIP: string;
}

interface Query {
  title: string;
  script: (found: Found) => string;
  /** What the pod's answer must show: proof that the question meant something. */
  expect: RegExp;
  /** For answers too long to show: how many lines they must have. */
  lines?: number;
}

const many = 'many.samples.svc.cluster.local';
const queries: Query[] = [
  {
    title: 'A of a service',
    script: () => dig('echo.samples.svc.cluster.local A'),
    expect: /\sIN\s+A\s+198\.18\./,
  },
  {
    title: 'AAAA of an IPv4-only service: NOERROR and no records',
    script: () => dig('echo.samples.svc.cluster.local AAAA'),
    expect: /^status NOERROR$/,
  },
  {
    title: 'PTR of a service ClusterIP',
    script: (f) => dig(`-x ${f.echoIP}`),
    expect: /PTR\s+echo\.samples\.svc\.cluster\.local\./,
  },
  {
    title: 'PTR of a StatefulSet pod IP',
    script: (f) => dig(`-x ${f.storePodIP}`),
    expect: /PTR\s+store-0\.store\.samples\.svc\.cluster\.local\./,
  },
  {
    title: 'SRV of a service named port',
    script: () => dig('_http._tcp.echo.samples.svc.cluster.local SRV'),
    expect: /SRV\s+0 100 80 echo\.samples\.svc\.cluster\.local\./,
  },
  {
    title: 'SRV of a headless service',
    script: () => dig('_http._tcp.store.samples.svc.cluster.local SRV'),
    expect: /store-1\.store\.samples\.svc\.cluster\.local\./,
  },
  {
    title: 'A of a headless service with 100 endpoints, dig over UDP (truncated, then TCP)',
    script: () => dig(`${many} A`),
    expect: /198\.18\.100\.100/,
    lines: 101,
  },
  {
    title: 'A of a headless service with 100 endpoints, dig over TCP',
    script: () => dig(`+tcp ${many} A`),
    expect: /198\.18\.100\.1$/m,
    lines: 101,
  },
  {
    title: 'a name that does not exist: NXDOMAIN',
    script: () => dig('no-such.samples.svc.cluster.local A'),
    expect: /^status NXDOMAIN$/,
  },
  {
    title: 'a short name through the search list (dig +search)',
    script: () => dig('+search echo A'),
    expect: /^echo\.samples\.svc\.cluster\.local\.\s+IN\s+A\s/m,
  },
  {
    title: 'getent: every address of the 100-endpoint headless service (glibc, UDP then TCP)',
    script: () => getent(`ahostsv4 ${many}`, "awk '{print $1}'"),
    expect: /198\.18\.100\.57/,
    lines: 101,
  },
  {
    title: 'getent: a short service name through the search list',
    script: () => getent('hosts echo'),
    expect: /echo\.samples\.svc\.cluster\.local/,
  },
  {
    title: 'getent: the name of a ClusterIP (PTR through glibc)',
    script: (f) => getent(`hosts ${f.echoIP}`),
    expect: /echo\.samples\.svc\.cluster\.local/,
  },
  {
    title: 'getent: a name that does not exist fails the same way',
    script: () => getent('hosts no-such-service'),
    expect: /^exit 2$/m,
  },
];

const fromPod = new Map<string, string>();
const fromTp = new Map<string, string>();

/** Every query in one shell, each answer after a marker line, and the answers split back. */
function runAll(found: Found): string {
  return queries.map((q, i) => `echo '### ${i}'; ${q.script(found)}`).join('; ');
}

function split(out: string, into: Map<string, string>): void {
  const parts = out.split(/^### (\d+)$/m);
  for (let i = 1; i < parts.length; i += 2) {
    const q = queries[Number(parts[i])];
    if (q !== undefined) into.set(q.title, (parts[i + 1] ?? '').trim());
  }
}

test.before(async () => {
  const r = await tpLab(['connect', '--docker', '-n', 'samples', '--name', name, '--json']);
  if (r.exitCode !== 0) throw new Error(`connect failed: ${r.stdout} ${r.stderr}`);
  joined = new Joined(json<ConnectResult>(r).container, dnsutilsImage());
  const get = async (args: string[]): Promise<string> =>
    (await kubectlOk(['-n', 'samples', 'get', ...args])).trim();
  const all = runAll({
    echoIP: await get(['svc', 'echo', '-o', 'jsonpath={.spec.clusterIP}']),
    storePodIP: await get(['pod', 'store-0', '-o', 'jsonpath={.status.podIP}']),
  });
  split(
    await kubectlOk(['-n', 'samples', 'exec', 'deploy/dnsutils', '--', 'sh', '-c', all]),
    fromPod,
  );
  const tp = await joined.run(dnsutilsImage(), ['sh', '-c', all]);
  if (tp.exitCode !== 0) throw new Error(`joined queries failed: ${tp.stderr}`);
  split(tp.stdout, fromTp);
});

test.after.always(async () => {
  await tpLab(['quit', '--name', name]);
  await engine.removeLabelled({ [LABEL_SESSION]: name });
});

for (const q of queries) {
  test(`through tp as from a pod: ${q.title}`, (t) => {
    const pod = fromPod.get(q.title) ?? '';
    const tp = fromTp.get(q.title);
    t.regex(pod, q.expect, 'the pod’s own answer');
    if (q.lines !== undefined) t.is(pod.split('\n').length, q.lines);
    t.is(tp, pod);
  });
}

test('a two-label name under a public or special-use TLD never goes to the cluster', async (t) => {
  const status = async (): Promise<Record<string, number>> => {
    const s = json<StatusReport>(await tpLab(['status', '--name', name, '--json']));
    const dns = s.status?.dns;
    return dns?.enabled === true ? (dns.stats as Record<string, number>) : {};
  };
  const before = await status();
  // The lab's own resolver (the daemon's upstream) answers tp-lab.test and nothing else.
  const r = await joined.run(dnsutilsImage(), ['dig', '+short', 'tp-lab.test', 'A']);
  t.is(r.stdout.trim(), '198.18.255.1');
  const after = await status();
  t.is(after.cluster, before.cluster);
  t.true((after.upstream ?? 0) > (before.upstream ?? 0));
});
