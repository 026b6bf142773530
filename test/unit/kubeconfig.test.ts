import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import { TpError } from '../../src/lib/errors.js';

function kubeconfig(opts: {
  current?: string;
  contexts: { name: string; cluster: string; namespace?: string }[];
  server?: string;
}): string {
  const clusters = [...new Set(opts.contexts.map((c) => c.cluster))]
    .map(
      (c) => `- name: ${c}\n  cluster:\n    server: ${opts.server ?? `https://${c}.invalid:6443`}`,
    )
    .join('\n');
  const contexts = opts.contexts
    .map(
      (c) =>
        `- name: ${c.name}\n  context:\n    cluster: ${c.cluster}\n    user: u${c.namespace ? `\n    namespace: ${c.namespace}` : ''}`,
    )
    .join('\n');
  return `apiVersion: v1\nkind: Config\ncurrent-context: "${opts.current ?? ''}"\nclusters:\n${clusters}\ncontexts:\n${contexts}\nusers:\n- name: u\n  user:\n    token: t\n`;
}

function file(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tp-kc-'));
  const p = join(dir, 'config');
  writeFileSync(p, content);
  return p;
}

test('a missing kubeconfig is a config error that names where tp looked and how to fix it', (t) => {
  const err = t.throws(() => loadKubeConfig({}, { KUBECONFIG: '/nonexistent/a:/nonexistent/b' }), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'config', code: 'KUBECONFIG_MISSING' });
  t.regex(err.message, /\/nonexistent\/a, \/nonexistent\/b/);
  t.regex(err.fix, /KUBECONFIG/);
});

test('the current context gives the cluster, server and namespace', (t) => {
  const p = file(
    kubeconfig({
      current: 'lab',
      contexts: [{ name: 'lab', cluster: 'c1', namespace: 'samples' }],
    }),
  );
  const { target } = loadKubeConfig({ kubeconfig: p }, {});
  t.deepEqual(target, {
    files: [p],
    context: 'lab',
    cluster: 'c1',
    server: 'https://c1.invalid:6443',
    namespace: 'samples',
  });
});

test('a context without a namespace is in "default"', (t) => {
  const p = file(kubeconfig({ current: 'lab', contexts: [{ name: 'lab', cluster: 'c1' }] }));
  t.is(loadKubeConfig({ kubeconfig: p }, {}).target.namespace, 'default');
});

test('no current context is a config error that says how to choose one', (t) => {
  const p = file(kubeconfig({ contexts: [{ name: 'lab', cluster: 'c1' }] }));
  const err = t.throws(() => loadKubeConfig({ kubeconfig: p }, {}), { instanceOf: TpError });
  t.like(err, { code: 'KUBECONTEXT_UNSET' });
  t.regex(err.fix, /use-context|--context/);
});

test('an unknown --context is a usage error listing the contexts that exist', (t) => {
  const p = file(
    kubeconfig({
      current: 'a',
      contexts: [
        { name: 'a', cluster: 'c1' },
        { name: 'b', cluster: 'c2' },
      ],
    }),
  );
  const err = t.throws(() => loadKubeConfig({ kubeconfig: p, context: 'zzz' }, {}), {
    instanceOf: TpError,
  });
  t.like(err, { category: 'usage', code: 'KUBECONTEXT_UNKNOWN' });
  t.is(err.fix, 'Use one of: a, b.');
});

test('a KUBECONFIG list is merged first-wins, like kubectl', (t) => {
  const first = file(
    kubeconfig({ current: 'a', contexts: [{ name: 'a', cluster: 'shared', namespace: 'one' }] }),
  );
  const second = file(
    kubeconfig({
      current: 'b',
      contexts: [
        { name: 'a', cluster: 'other', namespace: 'two' },
        { name: 'b', cluster: 'c2' },
      ],
      server: 'https://second.invalid',
    }),
  );
  const { target, kc } = loadKubeConfig({}, { KUBECONFIG: `${first}:${second}` });
  t.like(target, { context: 'a', cluster: 'shared', namespace: 'one' });
  t.deepEqual(
    kc
      .getContexts()
      .map((c) => c.name)
      .sort(),
    ['a', 'b'],
  );
});

test('a file that is not a kubeconfig is reported as unreadable', (t) => {
  const p = file('{{{ not yaml');
  const err = t.throws(() => loadKubeConfig({ kubeconfig: p }, {}), { instanceOf: TpError });
  t.like(err, { code: 'KUBECONFIG_INVALID' });
});
