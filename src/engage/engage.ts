/**
 * `tp replace`, `tp ingest` and `tp leave` (docs/engagements.md): everything checked before the
 * workload is touched, then the apply and its rollout, the daemon's inbound streams, the env,
 * and `--docker-run`, whose exit ends the engagement and becomes tp's exit code.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { silentProgress, type Progress } from '../cli/progress.js';
import type { EngageMode, HttpFilter } from '../contract/agent.js';
import type { EngagedPort, EngagementDetails } from '../contract/control.js';
import { runDocker } from '../docker/docker-run.js';
import type { DockerEngine } from '../docker/engine.js';
import { startPublishing } from '../docker/publish.js';
import { parseRunArgs, type RunArgs } from '../docker/run-args.js';
import { startSyncer, stopSyncers } from '../docker/syncer.js';
import { WorkloadClient, type ReadWorkload } from '../k8s/engage.js';
import { loadKubeConfig } from '../k8s/kubeconfig.js';
import { ServiceClient } from '../k8s/services.js';
import { TpError } from '../lib/errors.js';
import { FIELD_MANAGER_RESTORED } from '../lib/k8s-keys.js';
import { LABEL_SESSION, tpLabels } from '../lib/labels.js';
import { clientVersion } from '../lib/package-info.js';
import type { TpSettings } from '../session/config.js';
import { ControlClient } from '../session/control-client.js';
import { agentImage } from '../session/images.js';
import { LABEL_CONTEXT, LABEL_MANAGER_NAMESPACE, LABEL_NAMESPACE } from '../session/naming.js';
import { USE_OR_ENV, requireRunningSession } from '../session/status.js';
import { CONTROL_PORT } from '../contract/session.js';
import { checkWritable, dockerEnvFile, jsonEnvFile, writePrivate } from './env.js';
import { planEngagement, planLeave, SIDECAR } from './plan.js';
import { checkLocalPorts } from './ports.js';
import {
  chooseTap,
  releaseService,
  restoreServiceQuietly,
  switchService,
  tapFilter,
} from './taps.js';
import {
  copyMounts,
  removeMountCopies,
  volumeFlags,
  volumeLabels,
  type EngagedMount,
  type MountOption,
} from './volumes.js';

const ROLLOUT_TIMEOUT_MS = 180_000;

export interface EngageOptions {
  mode: EngageMode;
  workload: string;
  session?: string;
  container?: string;
  ports: string[];
  /** intercept, wiretap: `--service`, `--http-header`, `--http-path-prefix` as given. */
  service?: string;
  httpHeaders?: string[];
  httpPathPrefixes?: string[];
  envFile?: string;
  envJson?: string;
  /** The arguments after `--docker-run --`, when given. */
  dockerRun?: string[];
  /** `--mount`: copy the mounts into Docker volumes (the default), and maybe to a host dir. */
  mount?: MountOption;
  settings: TpSettings;
}

export interface EngageResult {
  session: string;
  /** `kind/name`. */
  workload: string;
  kind: string;
  name: string;
  namespace: string;
  mode: EngageMode;
  container: string;
  pods: string[];
  ports: EngagedPort[];
  envFile?: string;
  envJson?: string;
  /** Variables an env file in Docker's syntax could not hold (the JSON file has them). */
  envSkipped: string[];
  state: 'ACTIVE' | 'ENDED';
  /** The --docker-run container's exit code, once it ended. */
  exitCode?: number;
  /** The container's mounts and their copies (none with --mount=false). */
  mounts: EngagedMount[];
  /** `--mount <dir>`: where the copies are on this host too. */
  mountPoint?: string;
  /** replace, intercept: the helper that sends local writes in the writable mounts to the pod. */
  writeBack?: { container: string; paths: string[] };
  /** intercept, wiretap: the Service port taken and what of its traffic. */
  tap?: { service: string; port: number; targetPort: number; filter?: HttpFilter };
}

interface Context {
  engine: DockerEngine;
  session: string;
  daemon: string;
  namespace: string;
  control: ControlClient;
  workloads: WorkloadClient;
  services: ServiceClient;
  /** The namespace of the tp-manager the daemon sends heartbeats to. */
  manager?: string;
}

async function sessionContext(engine: DockerEngine, session: string | undefined): Promise<Context> {
  const d = await requireRunningSession(engine, session, USE_OR_ENV);
  const control = await ControlClient.for(engine, d);
  if (control === undefined) throw new Error(`session ${d.name} has no control API`);
  const { kc, target } = loadKubeConfig({ context: d.labels[LABEL_CONTEXT] ?? '' });
  const manager = d.labels[LABEL_MANAGER_NAMESPACE];
  return {
    ...(manager === undefined ? {} : { manager }),
    engine,
    session: d.labels[LABEL_SESSION] ?? d.name,
    daemon: d.id,
    namespace: d.labels[LABEL_NAMESPACE] ?? target.namespace,
    control,
    workloads: new WorkloadClient(kc, target),
    services: new ServiceClient(kc, target),
  };
}

const id = (w: ReadWorkload): string => `${w.kind.toLowerCase()}/${w.metadata.name}`;

export async function engage(
  engine: DockerEngine,
  opts: EngageOptions,
  progress: Progress,
  onActive: (r: EngageResult) => void = () => undefined,
): Promise<EngageResult> {
  // Everything that can be refused is, before the workload is touched.
  const run: RunArgs | undefined =
    opts.dockerRun === undefined ? undefined : parseRunArgs(opts.dockerRun);
  if (opts.envFile !== undefined) checkWritable(opts.envFile, '--env-file');
  if (opts.envJson !== undefined) checkWritable(opts.envJson, '--env-json');
  if (run !== undefined && (await engine.imageInfo(run.image)) === undefined) {
    throw new TpError('usage', `--docker-run: there is no image ${run.image} here.`, {
      code: 'IMAGE_NOT_FOUND',
      fix: `Build or pull it first (\`docker pull ${run.image}\`).`,
    });
  }
  const filter = tapFilter(opts);
  const ctx = await sessionContext(engine, opts.session);
  const found = await ctx.workloads.find(opts.workload, ctx.namespace);
  const tap = await chooseTap(ctx.services, found, opts, filter);
  const agent = await agentImage(engine, opts.settings, progress);
  const plan = planEngagement(found, {
    mode: opts.mode,
    session: ctx.session,
    ...(opts.container === undefined ? {} : { container: opts.container }),
    ports: tap === undefined ? opts.ports : [],
    ...(tap === undefined ? {} : { tap }),
    agentImage: agent.ref,
    // For tp-manager, which restores the engagement once the session's heartbeats stop.
    grace: opts.settings.engagementGraceSeconds,
    ...(ctx.manager === undefined ? {} : { manager: ctx.manager }),
    by: userInfo().username,
    now: new Date().toISOString(),
  });
  const engaged = (await ctx.control.call('GET /v1/status', undefined)).engagements;
  checkLocalPorts(
    plan.ports,
    engaged.filter((e) => e.workload !== id(found)),
  );
  await agent.publish();

  const step = progress.step(`Engaging ${id(found)} (${opts.mode})`);
  const agentContainer = opts.mode === 'replace' ? plan.container : SIDECAR;
  const start = (pods: string[]): Promise<unknown> =>
    ctx.control.call('POST /v1/engagements', {
      workload: id(found),
      namespace: ctx.namespace,
      mode: opts.mode,
      container: plan.container,
      pods,
      ports: plan.ports,
      follow: {
        selector: Object.entries(found.spec.selector?.matchLabels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        container: agentContainer,
        image: agent.ref,
      },
      ...(tap === undefined
        ? {}
        : {
            tap: {
              target: tap.containerPort,
              ...(tap.filter === undefined ? {} : { filter: tap.filter }),
            },
          }),
    });
  let applied: ReadWorkload;
  let early: string[] = [];
  let current = step;
  try {
    applied = await ctx.workloads.apply(plan.apply);
    // The cluster sends the first agent pod traffic once it is Ready, before the old pods are
    // gone and the rollout is done: the daemon's streams to it open then, not after.
    const rolledOut = ctx.workloads.rollout(applied, ROLLOUT_TIMEOUT_MS, (m) => {
      step.update(m);
    });
    if (plan.ports.length > 0) {
      const ready = applied;
      early = await firstReady(rolledOut, () =>
        ctx.workloads.podsRunning(ready, agentContainer, agent.ref),
      );
      if (early.length > 0) await start(early);
    }
    await rolledOut;
    step.succeed();
    // The Service turns to the agent only once every pod has one to receive its traffic.
    if (tap !== undefined) {
      current = progress.step(`Pointing Service ${tap.service}:${tap.servicePort} at the agent`);
      await switchService(
        ctx.services,
        ctx.namespace,
        tap.service,
        plan.engagements,
        await ctx.workloads.podsRunning(applied, agentContainer, agent.ref),
      );
      current.succeed();
    }
  } catch (err) {
    current.fail();
    if (early.length > 0)
      await ctx.control.call('POST /v1/engagements/leave', { workload: id(found) }).catch(() => 0);
    if (tap !== undefined)
      await restoreServiceQuietly(ctx.services, tap.service, found, ctx.session);
    await restoreQuietly(ctx, found);
    throw err;
  }
  const pods = await ctx.workloads.podsRunning(applied, agentContainer, agent.ref);
  const result: EngageResult = {
    session: ctx.session,
    workload: id(found),
    kind: found.kind,
    name: found.metadata.name,
    namespace: ctx.namespace,
    mode: opts.mode,
    container: plan.container,
    pods,
    ports: plan.ports,
    envSkipped: [],
    state: 'ACTIVE',
    mounts: [],
    ...(tap === undefined
      ? {}
      : {
          tap: {
            service: tap.service,
            port: tap.servicePort,
            targetPort: tap.containerPort,
            ...(tap.filter === undefined ? {} : { filter: tap.filter }),
          },
        }),
  };
  try {
    if (pods.join() !== early.join()) await start(pods);
    const info = await ctx.control.call(
      'POST /v1/engagements/info',
      { workload: result.workload },
      30_000,
    );
    const env = dockerEnvFile(info.env);
    result.envSkipped = env.skipped;
    if (opts.envFile !== undefined) {
      writePrivate(opts.envFile, env.text);
      result.envFile = opts.envFile;
    }
    if (opts.envJson !== undefined) {
      writePrivate(opts.envJson, jsonEnvFile(info.env));
      result.envJson = opts.envJson;
    }
    const mount = opts.mount ?? { copy: true };
    if (mount.copy) {
      const hostDir = mount.hostDir;
      if (hostDir !== undefined) result.mountPoint = hostDir;
      result.mounts = await copyMounts(
        engine,
        {
          control: ctx.control,
          daemon: ctx.daemon,
          session: ctx.session,
          workload: result.workload,
          mode: opts.mode,
          mounts: info.mounts,
          ...(hostDir === undefined ? {} : { hostDir }),
        },
        progress,
      );
    }
    const writable = result.mounts.filter((m) => !m.readOnly && m.notMounted === undefined);
    if ((opts.mode === 'replace' || opts.mode === 'intercept') && writable.length > 0) {
      const syncing = await startSyncer(engine, {
        daemon: ctx.daemon,
        workload: result.workload,
        controlPort: CONTROL_PORT,
        secret: ctx.control.secret,
        mounts: writable.map((m) => ({ path: m.path, volume: m.volume })),
        labels: tpLabels(clientVersion(), 'syncer', volumeLabels(ctx.session, result.workload)),
      });
      result.writeBack = { container: syncing.container, paths: writable.map((m) => m.path) };
    }
    // For `tp status`: the daemon knows the engagement, not where the CLI put its files.
    await ctx.control
      .call('POST /v1/engagements/describe', describe(result))
      .catch(() => undefined);
    onActive(result);
    if (run === undefined) return result;
    result.exitCode = await runContainer(
      ctx,
      run,
      info.env,
      env.skipped,
      volumeFlags(result.mounts),
    );
  } catch (err) {
    await leaveQuietly(engine, ctx, result.workload);
    throw err;
  }
  await leave(engine, { workload: result.workload, session: ctx.session }, progress);
  result.state = 'ENDED';
  return result;
}

/** The first agent pods found Ready while the rollout runs; none once it ended first. */
async function firstReady(
  rollout: Promise<void>,
  ready: () => Promise<string[]>,
): Promise<string[]> {
  let over = false;
  const ended = rollout.then(
    () => (over = true),
    () => (over = true),
  );
  const running = (): boolean => !over;
  while (running()) {
    const pods = await ready().catch(() => []);
    if (pods.length > 0) return pods;
    await Promise.race([ended, new Promise((r) => setTimeout(r, 200))]);
  }
  return [];
}

function describe(r: EngageResult): EngagementDetails {
  const back = new Set(r.writeBack?.paths ?? []);
  return {
    workload: r.workload,
    ...(r.envFile === undefined ? {} : { envFile: r.envFile }),
    ...(r.envJson === undefined ? {} : { envJson: r.envJson }),
    mounts: r.mounts.map((m) => ({
      path: m.path,
      ...(m.notMounted === undefined ? { volume: m.volume } : {}),
      readOnly: m.readOnly,
      writtenBack: back.has(m.path),
    })),
  };
}

async function runContainer(
  ctx: Context,
  run: RunArgs,
  env: Record<string, string>,
  multiLine: readonly string[],
  volumes: string[],
): Promise<number> {
  // -p: published by a helper on the session network, for as long as the container runs.
  await using _published =
    run.publish.length === 0
      ? undefined
      : await startPublishing(ctx.engine, {
          publish: run.publish,
          daemon: ctx.daemon,
          network: ctx.session,
          labels: tpLabels(clientVersion(), 'publisher', { [LABEL_SESSION]: ctx.session }),
        });
  const dir = mkdtempSync(join(tmpdir(), 'tp-run-'));
  try {
    const envFile = join(dir, 'env');
    writePrivate(envFile, dockerEnvFile(env).text);
    return await runDocker({
      args: run,
      daemon: ctx.daemon,
      labels: tpLabels(clientVersion(), 'joined', { [LABEL_SESSION]: ctx.session }),
      envFile,
      envByName: Object.fromEntries(multiLine.map((n) => [n, env[n] ?? ''])),
      volumes,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface LeaveOptions {
  workload: string;
  session?: string;
}

export interface LeaveResult {
  session: string;
  workload: string;
  /** False when this session had no engagement on the workload. */
  left: boolean;
  /** True when the workload is back to what it was before any engagement. */
  restored: boolean;
  /** The Docker volumes with copies of its mounts, removed. */
  volumes?: string[];
}

/** Ends this session's engagement of a workload and restores it once nobody else engages it. */
export async function leave(
  engine: DockerEngine,
  opts: LeaveOptions,
  progress: Progress,
): Promise<LeaveResult> {
  const ctx = await sessionContext(engine, opts.session);
  const w = await ctx.workloads.find(opts.workload, ctx.namespace);
  // What the local container wrote last reaches the pod before the pod goes.
  await stopSyncers(engine, volumeLabels(ctx.session, id(w)));
  await ctx.control.call('POST /v1/engagements/leave', { workload: id(w) }).catch(() => undefined);
  const released = await release(ctx, w, ctx.session, progress);
  const volumes = await removeMountCopies(engine, ctx.session, id(w));
  return {
    session: ctx.session,
    workload: id(w),
    ...released,
    ...(volumes.length === 0 ? {} : { volumes }),
  };
}

/**
 * The cluster half of leaving, which needs no daemon: the workload as the engagements left on
 * it want it, which is its original once none is left.
 */
export async function release(
  clients: { workloads: WorkloadClient; services: ServiceClient },
  w: ReadWorkload,
  session: string,
  progress: Progress,
): Promise<{ left: boolean; restored: boolean }> {
  const { workloads } = clients;
  const next = planLeave(w, session);
  if (next === undefined) return { left: false, restored: false };
  const step = progress.step(`Restoring ${id(w)}`);
  try {
    // The Service first, while the agent still takes what it sends meanwhile.
    await releaseService(clients.services, w, session);
    const applied = await workloads.apply(next.apply);
    if (next.handover !== undefined) await workloads.apply(next.handover, FIELD_MANAGER_RESTORED);
    await workloads.rollout(applied, ROLLOUT_TIMEOUT_MS, (m) => {
      step.update(m);
    });
    step.succeed();
  } catch (err) {
    step.fail();
    throw err;
  }
  return { left: true, restored: Object.keys(next.remaining).length === 0 };
}

/** Every engagement `session` holds in its namespace, ended: what quit and uninstall do first. */
export async function releaseAll(
  kube: { context: string; namespace: string },
  session: string,
  progress: Progress,
): Promise<string[]> {
  const { kc, target } = loadKubeConfig({ context: kube.context });
  const workloads = new WorkloadClient(kc, target);
  const services = new ServiceClient(kc, target);
  const released: string[] = [];
  for (const w of await workloads.engagedBy(session, kube.namespace)) {
    await release({ workloads, services }, w, session, progress);
    released.push(id(w));
  }
  return released;
}

async function leaveQuietly(engine: DockerEngine, ctx: Context, workload: string): Promise<void> {
  await leave(engine, { workload, session: ctx.session }, silentProgress).catch(() => undefined);
}

/** After a failed rollout: the workload as it was, whatever else failed. */
async function restoreQuietly(ctx: Context, w: ReadWorkload): Promise<void> {
  const now = await ctx.workloads
    .read(w.kind, w.metadata.name, w.metadata.namespace)
    .catch(() => undefined);
  const next = now === undefined ? undefined : planLeave(now, ctx.session);
  if (next !== undefined) await ctx.workloads.apply(next.apply).catch(() => undefined);
  if (next?.handover !== undefined)
    await ctx.workloads.apply(next.handover, FIELD_MANAGER_RESTORED).catch(() => undefined);
}
