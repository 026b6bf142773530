import test from 'ava';
import type { DoctorReport } from '../../src/doctor/checks.js';
import type { VersionReport } from '../../src/version/report.js';
import { tp } from '../helpers/cli.js';
import { context } from '../helpers/kubectl.js';

test('tp doctor passes every check against the lab cluster', async (t) => {
  const r = await tp(['doctor', '--build', '--json', '--context', context]);
  const report = JSON.parse(r.stdout) as DoctorReport;
  t.deepEqual(
    report.checks.filter((c) => c.status !== 'pass'),
    [],
  );
  t.true(report.ok);
  t.is(r.exitCode, 0);
});

test('tp version reports the lab cluster by context, server and version', async (t) => {
  const r = await tp(['version', '--json', '--context', context]);
  t.is(r.exitCode, 0, r.stderr);
  const report = JSON.parse(r.stdout) as VersionReport;
  t.like(report.cluster, { ok: true, context, server: 'https://127.0.0.1:6443' });
  t.regex(report.cluster.ok ? report.cluster.version : '', /^v1\.33\.\d+$/);
});
