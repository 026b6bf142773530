/** Bad input to `tp connect` gets a clear error and creates nothing, in Docker or the cluster. */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engine } from '../helpers/docker.js';
import { kubectlOk } from '../helpers/kubectl.js';
import { json, sessionName, tpLab } from '../helpers/session.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import type { TpErrorJson } from '../../src/lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-connect-errors-'));
test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});

const refused = test.macro(
  async (t, args: string[], expected: Partial<TpErrorJson>, env: NodeJS.ProcessEnv = {}) => {
    const name = sessionName('bad');
    const r = await tpLab(['connect', '--docker', '--name', name, '--json', ...args], env);
    const err = json<{ error: TpErrorJson }>(r).error;
    t.like(err, expected);
    t.is(r.exitCode, err.exitCode);
    t.notRegex(r.stdout + r.stderr, /\n\s+at /, 'no stack trace');
    const left = await engine.listLabelled({ [LABEL_SESSION]: name });
    t.deepEqual([...left.containers, ...left.networks], []);
  },
);

test('a malformed --also-proxy is a usage error', refused, ['--also-proxy', '198.18.300.0/24'], {
  code: 'CIDR_INVALID',
  category: 'usage',
});
test(
  'a range that collides with the daemon network is refused',
  refused,
  ['--also-proxy', '198.19.0.0/16'],
  {
    code: 'SUBNET_COLLISION',
    category: 'usage',
  },
);
test(
  'an unknown namespace is a usage error naming --namespace',
  refused,
  ['-n', 'no-such-namespace'],
  {
    code: 'NAMESPACE_UNKNOWN',
    category: 'usage',
  },
);
test('an unknown --network is a usage error naming it', refused, ['--network', 'no-such-net'], {
  code: 'NETWORK_UNKNOWN',
  category: 'usage',
  message: '--network no-such-net: there is no Docker network named no-such-net.',
});
test('an unknown context is a usage error', refused, ['--context', 'no-such-context'], {
  code: 'KUBECONTEXT_UNKNOWN',
});
test(
  'without a registry or agent image, connect says how to set one',
  refused,
  [],
  { code: 'REGISTRY_UNSET' },
  {
    TP_REGISTRY: '',
  },
);

test('a context whose user runs an exec credential plugin fails at connect, saying why', async (t) => {
  const raw = await kubectlOk(['config', 'view', '--raw', '--minify', '--flatten', '-o', 'json']);
  const kc = JSON.parse(raw) as { users: { user: Record<string, unknown> }[] };
  for (const u of kc.users) {
    u.user = {
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: 'true',
        interactiveMode: 'Never',
      },
    };
  }
  const file = join(dir, 'exec.kubeconfig');
  writeFileSync(file, JSON.stringify(kc));
  const name = sessionName('bad');
  const r = await tpLab(['connect', '--docker', '--kubeconfig', file, '--name', name, '--json']);
  t.like(json<{ error: TpErrorJson }>(r).error, {
    code: 'KUBE_EXEC_AUTH_UNSUPPORTED',
    category: 'config',
  });
  t.deepEqual((await engine.listLabelled({ [LABEL_SESSION]: name })).containers, []);
});

test('connect without --docker is a usage error that names --docker and says to add it', async (t) => {
  const r = await tpLab(['connect', '--json']);
  t.is(r.exitCode, 2);
  t.like(json<{ error: TpErrorJson }>(r).error, {
    code: 'FLAG_MISSING',
    category: 'usage',
    message: 'tp connect needs --docker.',
    fix: 'Add --docker; `tp connect --help` describes it.',
  });
  const text = await tpLab(['connect']);
  t.is(
    text.stderr,
    'Error: tp connect needs --docker.\n  Fix: Add --docker; `tp connect --help` describes it.\n',
  );
});
