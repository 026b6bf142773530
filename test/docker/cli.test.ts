import test from 'ava';
import type { DoctorReport } from '../../src/doctor/checks.js';
import type { VersionReport } from '../../src/version/report.js';
import { tp } from '../helpers/cli.js';
import { daemonImageRef } from '../helpers/docker.js';

const noKubeconfig = { KUBECONFIG: '/nonexistent/tp-test-kubeconfig' };

test('tp doctor passes the Docker, image and TUN checks and names the fix for a missing kubeconfig', async (t) => {
  const r = await tp(['doctor', '--build', '--json'], noKubeconfig);
  t.is(r.exitCode, 1, r.stderr);
  const report = JSON.parse(r.stdout) as DoctorReport;
  const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
  t.deepEqual(status, {
    docker: 'pass',
    kubeconfig: 'fail',
    cluster: 'skip',
    'daemon-image': 'pass',
    'agent-image': 'pass',
    tun: 'pass',
  });
  const kube = report.checks.find((c) => c.id === 'kubeconfig');
  t.regex(kube?.fix ?? '', /KUBECONFIG/);
});

test('tp doctor in text mode prints one line per check and no stack trace', async (t) => {
  const r = await tp(['doctor'], noKubeconfig);
  t.is(r.exitCode, 1);
  t.regex(r.stdout, /^pass {2}Docker engine/m);
  t.regex(r.stdout, /^FAIL {2}Kubeconfig .*\n\s+fix: /m);
  t.notRegex(r.stdout + r.stderr, /\n\s+at /);
});

test('tp version reports the engine and the images and says why the cluster is unavailable', async (t) => {
  await daemonImageRef();
  const r = await tp(['version', '--json'], noKubeconfig);
  t.is(r.exitCode, 0, r.stderr);
  const report = JSON.parse(r.stdout) as VersionReport;
  t.true(report.docker.ok);
  t.like(report.images.daemon, { ok: true, present: true });
  t.false(report.cluster.ok);
  const text = await tp(['version'], noKubeconfig);
  t.regex(text.stdout, /^Docker engine : \S+ \(API 1\.\d+\)/m);
});

test('an unreachable Docker engine is reported with the fix, not a stack trace', async (t) => {
  const r = await tp(['doctor', '--json'], {
    ...noKubeconfig,
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  t.is(r.exitCode, 1);
  const report = JSON.parse(r.stdout) as DoctorReport;
  const docker = report.checks.find((c) => c.id === 'docker');
  t.like(docker, { status: 'fail' });
  t.regex(docker?.fix ?? '', /DOCKER_HOST|lab\/up/);
});
