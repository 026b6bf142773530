/**
 * The daemon's control API, typed once for both sides: each route's request body (undefined
 * when it takes none) and its response. The daemon checks every body with the route's
 * `parse` before a handler sees it, so a handler only ever gets a well-formed request.
 */
import type { Readable } from 'node:stream';
import {
  relativeMountPath,
  type AgentInfo,
  type EngageMode,
  type HttpFilter,
  type Protocol,
  type TarReply,
} from './agent.js';
import { parseHttpFilter } from './http-filter.js';
import type { SessionStatus } from './session.js';

/**
 * A route's answer when it is a byte stream rather than JSON: the body, and a small JSON
 * description of it that travels in a header ahead of the body.
 */
export class ControlStream<M> {
  constructor(
    readonly body: Readable,
    readonly meta: M,
    readonly contentType: string,
  ) {}
}

/**
 * A route's request when it is a byte stream: the body, and a small JSON description of it
 * that travels in the same header as a stream answer's.
 */
export class ControlUpload<M> {
  constructor(
    readonly body: Readable,
    readonly meta: M,
  ) {}
}

/** The header that carries a stream's description (URI-encoded JSON: header values are ASCII). */
export const STREAM_META_HEADER = 'x-tp-meta';

/** What the agent said of a mount's tar before sending it; `skipped` may be empty. */
export type TarMeta = Omit<TarReply, 'skipped'> & { skipped: string[] };

/** A port the agent takes in the cluster, and the port in the daemon's namespace it goes to. */
export interface EngagedPort {
  port: number;
  protocol: Protocol;
  local: number;
  name?: string;
}

/** What the CLI asks the daemon once the workload runs the agent. */
export interface EngagementStart {
  /** `kind/name`, as the engagement is known in the session. */
  workload: string;
  namespace: string;
  mode: EngageMode;
  container: string;
  /** The pods whose agent answers. */
  pods: string[];
  ports: EngagedPort[];
  /** intercept, wiretap: the app port the agent proxies, and what of its traffic to take. */
  tap?: { target: number; filter?: HttpFilter };
  /**
   * How the daemon finds the engagement's agent pods as they change (another session's
   * engagement rolls the workload, a pod is rescheduled): the workload's label selector and
   * the agent's container and image.
   */
  follow?: { selector: string; container: string; image: string };
}

/** What the CLI learnt once the engagement ran: where it put the env and the mounts. */
export interface EngagementDetails {
  workload: string;
  envFile?: string;
  envJson?: string;
  mounts: EngagementMount[];
  /** The --docker-run container, while it runs. */
  local?: string;
}

export interface EngagementMount {
  path: string;
  /** The Docker volume with the copy; absent when the mount is not in Docker. */
  volume?: string;
  readOnly: boolean;
  writtenBack: boolean;
}

export interface EngagementStatus extends EngagementStart, Omit<EngagementDetails, 'workload'> {
  since: string;
  /** Connections from the cluster carried to local ports, and those the local side refused. */
  accepted: number;
  refused: number;
  /** intercept, wiretap: what the agents sent this session, and wiretap copies they dropped. */
  taken?: number;
  dropped?: number;
}

export interface ControlApi {
  'GET /v1/status': { request: undefined; response: SessionStatus };
  'POST /v1/quit': { request: undefined; response: { stopping: true } };
  'POST /v1/engagements': { request: EngagementStart; response: EngagementStatus };
  'POST /v1/engagements/info': { request: { workload: string }; response: AgentInfo };
  'POST /v1/engagements/leave': { request: { workload: string }; response: { ended: boolean } };
  'POST /v1/engagements/describe': { request: EngagementDetails; response: EngagementStatus };
  /** A tar of one mount, from the agent of the engagement's first pod that answers. */
  'POST /v1/engagements/tar': { request: MountRequest; response: ControlStream<TarMeta> };
  /**
   * Files written locally in a writable mount (replace): the body is a tar of what changed,
   * written to the mount in every pod of the engagement after `deletes` are removed.
   */
  'POST /v1/engagements/write': { request: ControlUpload<WriteRequest>; response: WriteResult };
}

export interface WriteRequest extends MountRequest {
  /** Paths relative to the mount, removed locally since the last write. */
  deletes: string[];
}

export interface WriteResult {
  /** The pods whose mount now has the files. */
  pods: string[];
  files: number;
  bytes: number;
  deleted: number;
}

export interface MountRequest {
  workload: string;
  /** The mount's path in the container, as the agent's info names it. */
  path: string;
}

export type ControlRoute = keyof ControlApi;
export type ControlRequest<R extends ControlRoute> = ControlApi[R]['request'];
export type ControlResponse<R extends ControlRoute> = ControlApi[R]['response'];

/** The routes that answer with a stream, and those that answer with JSON. */
export type StreamRoute = {
  [R in ControlRoute]: ControlResponse<R> extends ControlStream<unknown> ? R : never;
}[ControlRoute];
/** The routes whose request is a byte stream. */
export type UploadRoute = {
  [R in ControlRoute]: ControlRequest<R> extends ControlUpload<unknown> ? R : never;
}[ControlRoute];
export type JsonRoute = Exclude<ControlRoute, StreamRoute | UploadRoute>;
export type UploadMeta<R extends UploadRoute> =
  ControlRequest<R> extends ControlUpload<infer M> ? M : never;
export type StreamMeta<R extends StreamRoute> =
  ControlResponse<R> extends ControlStream<infer M> ? M : never;

/** The largest request body the daemon reads: engagement requests are a few KiB. */
export const MAX_CONTROL_BODY = 1024 * 1024;
/** The largest upload: the daemon holds one in memory while it writes it to each pod. */
export const MAX_CONTROL_UPLOAD = 64 * 1024 * 1024;

/** Turns a parsed JSON body into the route's request, or throws saying what is wrong. */
export type BodyParser<T> = (body: unknown) => T;

/** For routes that take no body: anything but an absent or empty one is refused. */
export const noBody: BodyParser<undefined> = (body) => {
  if (body !== undefined) throw new Error('this route takes no request body');
  return undefined;
};

type Fields = Record<string, unknown>;

function fields(body: unknown): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Error('the request body is not a JSON object');
  }
  return body as Fields;
}

function text(o: Fields, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new Error(`${key} is not a non-empty string`);
  return v;
}

function portNumber(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new Error(`${what} is not a port number`);
  }
  return v;
}

const modes: readonly EngageMode[] = ['replace', 'ingest', 'intercept', 'wiretap'];

const workloadOnly: BodyParser<{ workload: string }> = (body) => ({
  workload: text(fields(body), 'workload'),
});

export const parseMountRequest: BodyParser<MountRequest> = (body) => {
  const o = fields(body);
  const path = text(o, 'path');
  if (!path.startsWith('/') || path.includes('\0')) throw new Error('path is not an absolute path');
  return { workload: text(o, 'workload'), path };
};

export const parseEngagementStart: BodyParser<EngagementStart> = (body) => {
  const o = fields(body);
  const mode = text(o, 'mode') as EngageMode;
  if (!modes.includes(mode)) throw new Error(`mode ${mode} is not one of ${modes.join(', ')}`);
  const pods = o.pods;
  if (!Array.isArray(pods) || pods.some((p) => typeof p !== 'string' || p === '')) {
    throw new Error('pods is not a list of pod names');
  }
  const ports = o.ports;
  if (!Array.isArray(ports)) throw new Error('ports is not a list');
  return {
    workload: text(o, 'workload'),
    namespace: text(o, 'namespace'),
    mode,
    container: text(o, 'container'),
    pods: pods as string[],
    ports: ports.map((raw, i): EngagedPort => {
      const p = fields(raw);
      if (p.protocol !== 'TCP' && p.protocol !== 'UDP')
        throw new Error(`ports[${i}].protocol is not TCP or UDP`);
      return {
        port: portNumber(p.port, `ports[${i}].port`),
        protocol: p.protocol,
        local: portNumber(p.local, `ports[${i}].local`),
        ...(typeof p.name === 'string' ? { name: p.name } : {}),
      };
    }),
    ...(o.tap === undefined ? {} : { tap: tapOf(o.tap) }),
    ...(o.follow === undefined ? {} : { follow: followOf(o.follow) }),
  };
};

function followOf(value: unknown): NonNullable<EngagementStart['follow']> {
  const o = fields(value);
  return {
    selector: text(o, 'selector'),
    container: text(o, 'container'),
    image: text(o, 'image'),
  };
}

function tapOf(value: unknown): NonNullable<EngagementStart['tap']> {
  const o = fields(value);
  return {
    target: portNumber(o.target, 'tap.target'),
    ...(o.filter === undefined ? {} : { filter: parseHttpFilter(o.filter, 'tap.filter') }),
  };
}

const optionalText = (o: Fields, key: string): Record<string, string> =>
  o[key] === undefined ? {} : { [key]: text(o, key) };

export const parseEngagementDetails: BodyParser<EngagementDetails> = (body) => {
  const o = fields(body);
  if (!Array.isArray(o.mounts)) throw new Error('mounts is not a list');
  return {
    workload: text(o, 'workload'),
    ...optionalText(o, 'envFile'),
    ...optionalText(o, 'envJson'),
    ...optionalText(o, 'local'),
    mounts: o.mounts.map((raw, i): EngagementMount => {
      const m = fields(raw);
      if (typeof m.readOnly !== 'boolean' || typeof m.writtenBack !== 'boolean')
        throw new Error(`mounts[${i}] needs readOnly and writtenBack`);
      return {
        path: text(m, 'path'),
        ...optionalText(m, 'volume'),
        readOnly: m.readOnly,
        writtenBack: m.writtenBack,
      };
    }),
  };
};

export const parseWriteRequest: BodyParser<WriteRequest> = (body) => {
  const o = fields(body);
  const deletes = o.deletes;
  if (!Array.isArray(deletes)) throw new Error('deletes is not a list');
  return {
    ...parseMountRequest(body),
    deletes: deletes.map((d, i) => relativeMountPath(d, `deletes[${i}]`)),
  };
};

/** For upload routes: the parser of the description in the header. */
export const uploadParsers: { [R in UploadRoute]: BodyParser<UploadMeta<R>> } = {
  'POST /v1/engagements/write': parseWriteRequest,
};

export const bodyParsers: {
  [R in Exclude<ControlRoute, UploadRoute>]: BodyParser<ControlRequest<R>>;
} = {
  'GET /v1/status': noBody,
  'POST /v1/quit': noBody,
  'POST /v1/engagements': parseEngagementStart,
  'POST /v1/engagements/info': workloadOnly,
  'POST /v1/engagements/leave': workloadOnly,
  'POST /v1/engagements/describe': parseEngagementDetails,
  'POST /v1/engagements/tar': parseMountRequest,
};
