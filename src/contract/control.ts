/**
 * The daemon's control API, typed once for both sides: each route's request body (undefined
 * when it takes none) and its response. The daemon checks every body with the route's
 * `parse` before a handler sees it, so a handler only ever gets a well-formed request.
 */
import type { SessionStatus } from './session.js';

export interface ControlApi {
  'GET /v1/status': { request: undefined; response: SessionStatus };
  'POST /v1/quit': { request: undefined; response: { stopping: true } };
}

export type ControlRoute = keyof ControlApi;
export type ControlRequest<R extends ControlRoute> = ControlApi[R]['request'];
export type ControlResponse<R extends ControlRoute> = ControlApi[R]['response'];

/** The largest request body the daemon reads: engagement requests are a few KiB. */
export const MAX_CONTROL_BODY = 1024 * 1024;

/** Turns a parsed JSON body into the route's request, or throws saying what is wrong. */
export type BodyParser<T> = (body: unknown) => T;

/** For routes that take no body: anything but an absent or empty one is refused. */
export const noBody: BodyParser<undefined> = (body) => {
  if (body !== undefined) throw new Error('this route takes no request body');
  return undefined;
};

export const bodyParsers: { [R in ControlRoute]: BodyParser<ControlRequest<R>> } = {
  'GET /v1/status': noBody,
  'POST /v1/quit': noBody,
};
