import Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { filesTar } from './files.js';
import { followJson } from './follow.js';
import { dockerError, statusCodeOf } from './errors.js';
import { debugLogger } from '../lib/log.js';
import { labelSelector } from '../lib/labels.js';

const debug = debugLogger('docker');

export interface EngineVersion {
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
}

export interface ImageInfo {
  id: string;
  labels: Record<string, string>;
}

export interface ContainerSpec {
  image: string;
  name?: string;
  cmd?: string[];
  entrypoint?: string[];
  labels: Record<string, string>;
  env?: Record<string, string>;
  capAdd?: string[];
  /** Host device paths, mapped at the same path in the container. */
  devices?: string[];
  /** `container:<id>` to join another container's network namespace, or a network name. */
  networkMode?: string;
  /** More networks to attach before the container starts (`docker network connect`). */
  networks?: string[];
  /** Other names the container answers to on its `networkMode` network (Docker's DNS). */
  networkAliases?: string[];
  /** Container ports published on the host's loopback only, each on a free host port. */
  publishLoopback?: number[];
  /** `name:address` entries for /etc/hosts; `host-gateway` is the engine's host address. */
  extraHosts?: string[];
  /** Files written into the container before it starts (secrets stay out of its env). */
  files?: { path: string; content: string; mode?: number }[];
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * The one place tp talks to Docker. Nothing outside src/docker imports dockerode; the rest
 * of tp sees these methods and TpErrors that say what to do.
 */
export class DockerEngine {
  private constructor(
    private readonly docker: Docker,
    readonly endpoint: string,
  ) {}

  /** The dockerode client, for the other modules of src/docker only. */
  get client(): Docker {
    return this.docker;
  }

  /** Honours DOCKER_HOST (and DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) like the docker CLI. */
  static connect(env: NodeJS.ProcessEnv = process.env): DockerEngine {
    const host = env.DOCKER_HOST;
    const endpoint = host !== undefined && host !== '' ? host : 'unix:///var/run/docker.sock';
    return new DockerEngine(new Docker(), endpoint);
  }

  async version(): Promise<EngineVersion> {
    try {
      const v = await this.docker.version();
      return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
    } catch (err) {
      throw dockerError(err, this.endpoint, 'report its version');
    }
  }

  async imageInfo(ref: string): Promise<ImageInfo | undefined> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      // The engine sends `null` for an image without labels, whatever the typings say.
      const labels = info.Config.Labels as Record<string, string> | null;
      return { id: info.Id, labels: labels ?? {} };
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw dockerError(err, this.endpoint, `inspect image ${ref}`);
    }
  }

  /** Streams the engine's JSON progress lines to `onLine`; rejects on the first build error. */
  async buildImage(
    context: NodeJS.ReadableStream,
    options: {
      tag: string;
      dockerfile: string;
      labels: Record<string, string>;
      buildArgs?: Record<string, string>;
    },
    onLine: (line: string) => void,
  ): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.buildImage(context, {
        t: options.tag,
        dockerfile: options.dockerfile,
        labels: options.labels,
        buildargs: options.buildArgs ?? {},
        rm: true,
        forcerm: true,
      });
    } catch (err) {
      throw dockerError(err, this.endpoint, `build ${options.tag}`);
    }
    await followJson(stream, (msg) => {
      if (typeof msg.stream === 'string') {
        for (const l of msg.stream.split('\n')) if (l.trim() !== '') onLine(l.trim());
      }
      if (typeof msg.status === 'string') onLine(msg.status);
    }).catch((err: unknown) => {
      throw dockerError(err, this.endpoint, `build ${options.tag}`);
    });
  }

  async pullImage(ref: string, onLine: (line: string) => void = () => undefined): Promise<void> {
    try {
      const stream = await this.docker.pull(ref);
      await followJson(stream, (msg) => {
        if (typeof msg.status === 'string') {
          onLine(typeof msg.id === 'string' ? `${msg.id}: ${msg.status}` : msg.status);
        }
      });
    } catch (err) {
      throw dockerError(err, this.endpoint, `pull ${ref}`);
    }
  }

  /** Starts a container in the background; the handle stops and removes it. */
  async startContainer(spec: ContainerSpec): Promise<RunningContainer> {
    // Like `docker run`: an image the engine lacks is pulled first.
    if ((await this.imageInfo(spec.image)) === undefined) await this.pullImage(spec.image);
    try {
      const c = await this.docker.createContainer(toCreateOptions(spec));
      const handle = new RunningContainer(this, c.id, spec.name ?? c.id.slice(0, 12));
      try {
        if (spec.files !== undefined && spec.files.length > 0) {
          await c.putArchive(await filesTar(spec.files), { path: '/' });
        }
        for (const network of spec.networks ?? []) {
          await this.docker.getNetwork(network).connect({ Container: c.id });
        }
        await c.start();
      } catch (err) {
        await handle.stop();
        throw err;
      }
      debug(`started ${handle.name} from ${spec.image}`);
      return handle;
    } catch (err) {
      throw dockerError(err, this.endpoint, `start a container from ${spec.image}`);
    }
  }

  /** Runs a container to completion and returns what it printed; the container is removed. */
  async runToCompletion(spec: ContainerSpec, timeoutMs = 60_000): Promise<CommandResult> {
    const container = await this.startContainer(spec);
    await using _ = container;
    const c = this.docker.getContainer(container.id);
    try {
      const waited = (await withTimeout(c.wait(), timeoutMs, `container ${container.name}`)) as {
        StatusCode: number;
      };
      const { stdout, stderr } = await this.logs(container.id);
      return { exitCode: waited.StatusCode, stdout, stderr };
    } catch (err) {
      throw dockerError(err, this.endpoint, `run ${spec.image}`);
    }
  }

  async exec(containerId: string, cmd: string[]): Promise<CommandResult> {
    try {
      const c = this.docker.getContainer(containerId);
      const ex = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await ex.start({ hijack: true, stdin: false });
      const { stdout, stderr } = await this.demux(stream);
      const info = await ex.inspect();
      return { exitCode: info.ExitCode ?? -1, stdout, stderr };
    } catch (err) {
      throw dockerError(err, this.endpoint, `exec ${cmd.join(' ')}`);
    }
  }

  async isRunning(containerId: string): Promise<boolean> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return info.State.Running;
    } catch (err) {
      if (statusCodeOf(err) === 404) return false;
      throw dockerError(err, this.endpoint, `inspect container ${containerId}`);
    }
  }

  async signal(containerId: string, signal: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).kill({ signal });
    } catch (err) {
      throw dockerError(err, this.endpoint, `send ${signal} to ${containerId}`);
    }
  }

  /** What the container has printed so far. */
  async logsOf(containerId: string): Promise<{ stdout: string; stderr: string }> {
    try {
      return await this.logs(containerId);
    } catch (err) {
      throw dockerError(err, this.endpoint, `read the logs of ${containerId}`);
    }
  }

  /** Force-removes a container; a container that is already gone is not an error. */
  async removeContainer(containerId: string): Promise<boolean> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true, v: true });
      return true;
    } catch (err) {
      const status = statusCodeOf(err);
      // 409: removal already in progress, which ends the same way.
      if (status === 404 || status === 409) return false;
      throw dockerError(err, this.endpoint, `remove container ${containerId}`);
    }
  }

  async createNetwork(name: string, labels: Record<string, string>): Promise<string> {
    try {
      const n = await this.docker.createNetwork({
        Name: name,
        Labels: labels,
        CheckDuplicate: true,
      });
      return n.id;
    } catch (err) {
      throw dockerError(err, this.endpoint, `create network ${name}`);
    }
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<string> {
    try {
      await this.docker.createVolume({ Name: name, Labels: labels });
      return name;
    } catch (err) {
      throw dockerError(err, this.endpoint, `create volume ${name}`);
    }
  }

  async listLabelled(labels: Readonly<Record<string, string>> = {}): Promise<LabelledResources> {
    const filters = JSON.stringify({ label: labelSelector(labels) });
    try {
      const [containers, networks, volumes] = await Promise.all([
        this.docker.listContainers({ all: true, filters }),
        this.docker.listNetworks({ filters }),
        this.docker.listVolumes({ filters }),
      ]);
      return {
        containers: containers.map((c) => ({
          id: c.Id,
          name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
          labels: c.Labels,
        })),
        networks: networks.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} })),
        volumes: volumes.Volumes.map((v) => ({ id: v.Name, name: v.Name, labels: v.Labels })),
      };
    } catch (err) {
      throw dockerError(err, this.endpoint, 'list tp resources');
    }
  }

  /**
   * Removes every container, network and volume carrying tp's labels (narrowed by `labels`),
   * containers first because they hold the networks and volumes.
   */
  async removeLabelled(labels: Readonly<Record<string, string>> = {}): Promise<LabelledResources> {
    const found = await this.listLabelled(labels);
    try {
      for (const c of found.containers) await this.removeContainer(c.id);
      for (const n of found.networks) await this.removeNetwork(n.id);
      for (const v of found.volumes) await this.docker.getVolume(v.id).remove();
    } catch (err) {
      if (statusCodeOf(err) !== 404) throw dockerError(err, this.endpoint, 'remove tp resources');
    }
    return found;
  }

  /**
   * A tp network may still hold containers tp did not create (a user's database started on a
   * session's network): they are disconnected, and keep running, before it goes.
   */
  private async removeNetwork(id: string): Promise<void> {
    const network = this.docker.getNetwork(id);
    const info = (await network.inspect()) as { Containers?: Record<string, unknown> | null };
    for (const container of Object.keys(info.Containers ?? {})) {
      await network.disconnect({ Container: container, Force: true }).catch((err: unknown) => {
        if (statusCodeOf(err) !== 404) throw err;
      });
    }
    await network.remove();
  }

  private async logs(containerId: string): Promise<{ stdout: string; stderr: string }> {
    const buf = await this.docker
      .getContainer(containerId)
      .logs({ stdout: true, stderr: true, follow: false });
    return demuxBuffer(buf);
  }

  private demux(stream: NodeJS.ReadableStream): Promise<{ stdout: string; stderr: string }> {
    const out = new PassThrough();
    const err = new PassThrough();
    const chunks = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    out.on('data', (b: Buffer) => chunks.stdout.push(b));
    err.on('data', (b: Buffer) => chunks.stderr.push(b));
    this.docker.modem.demuxStream(stream, out, err);
    return new Promise((resolve, reject) => {
      stream.on('error', reject);
      stream.on('end', () => {
        resolve({
          stdout: Buffer.concat(chunks.stdout).toString('utf8'),
          stderr: Buffer.concat(chunks.stderr).toString('utf8'),
        });
      });
    });
  }
}

export interface LabelledResource {
  id: string;
  name: string;
  labels: Record<string, string>;
}

export interface LabelledResources {
  containers: LabelledResource[];
  networks: LabelledResource[];
  volumes: LabelledResource[];
}

/** A started container. `stop()` removes it and may be called any number of times. */
export class RunningContainer implements AsyncDisposable {
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly engine: DockerEngine,
    readonly id: string,
    readonly name: string,
  ) {}

  exec(cmd: string[]): Promise<CommandResult> {
    return this.engine.exec(this.id, cmd);
  }

  isRunning(): Promise<boolean> {
    return this.engine.isRunning(this.id);
  }

  signal(signal: string): Promise<void> {
    return this.engine.signal(this.id, signal);
  }

  logs(): Promise<{ stdout: string; stderr: string }> {
    return this.engine.logsOf(this.id);
  }

  /** Waits until a line of the container's stdout matches. */
  async waitForLog(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { stdout, stderr } = await this.logs();
      const line = stdout.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (Date.now() > deadline || !(await this.isRunning())) {
        throw new Error(
          `${this.name} printed no line matching ${String(pattern)}:\n${stdout}${stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  stop(): Promise<void> {
    this.stopped ??= this.engine.removeContainer(this.id).then(() => undefined);
    return this.stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

function toCreateOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const opts: Docker.ContainerCreateOptions = {
    Image: spec.image,
    Labels: spec.labels,
    HostConfig: {
      CapAdd: spec.capAdd ?? [],
      Devices: (spec.devices ?? []).map((d) => ({
        PathOnHost: d,
        PathInContainer: d,
        CgroupPermissions: 'rwm',
      })),
      ...(spec.networkMode === undefined ? {} : { NetworkMode: spec.networkMode }),
      ...(spec.extraHosts === undefined ? {} : { ExtraHosts: spec.extraHosts }),
      ...(spec.publishLoopback === undefined
        ? {}
        : {
            PortBindings: Object.fromEntries(
              spec.publishLoopback.map((p) => [
                `${p}/tcp`,
                [{ HostIp: '127.0.0.1', HostPort: '' }],
              ]),
            ),
          }),
    },
    ...(spec.publishLoopback === undefined
      ? {}
      : { ExposedPorts: Object.fromEntries(spec.publishLoopback.map((p) => [`${p}/tcp`, {}])) }),
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
  };
  if (spec.networkAliases !== undefined && spec.networkMode !== undefined) {
    opts.NetworkingConfig = {
      EndpointsConfig: { [spec.networkMode]: { Aliases: spec.networkAliases } },
    };
  }
  if (spec.name !== undefined) opts.name = spec.name;
  if (spec.cmd !== undefined) opts.Cmd = spec.cmd;
  if (spec.entrypoint !== undefined) opts.Entrypoint = spec.entrypoint;
  return opts;
}

/** Splits Docker's multiplexed log format (8-byte frame headers) into stdout and stderr. */
export function demuxBuffer(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const kind = buf[i];
    const len = buf.readUInt32BE(i + 4);
    const body = buf.subarray(i + 8, i + 8 + len);
    (kind === 2 ? err : out).push(body);
    i += 8 + len;
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not finish within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
