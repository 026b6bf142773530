/**
 * An intercept's HTTP filter as it crosses a boundary (the pod spec, a tap line, the control
 * API): checked the way the CLI checks the flags, so a filter a user could not have given
 * never reaches the agent's matcher.
 */
import type { HttpFilter } from './agent.js';

/** Header names are RFC 9110 tokens (stored lower-case); values visible bytes, space, tab. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
export const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const fail = (what: string, why: string): Error => new Error(`${what} ${why}`);

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw fail(what, 'is not a list');
  return value;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw fail(what, 'is not a string');
  return value;
}

export function parseHttpFilter(value: unknown, what: string): HttpFilter {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw fail(what, 'is not an object');
  const o = value as Record<string, unknown>;
  return {
    headers: list(o.headers, `${what}.headers`).map((h, i) => {
      const at = `${what}.headers[${i}]`;
      if (typeof h !== 'object' || h === null) throw fail(at, 'is not an object');
      const f = h as Record<string, unknown>;
      const name = text(f.name, `${at}.name`);
      const v = text(f.value, `${at}.value`);
      if (!HEADER_NAME.test(name)) throw fail(`${at}.name`, 'is not a lower-case header name');
      if (!HEADER_VALUE.test(v)) throw fail(`${at}.value`, 'has control characters');
      return { name, value: v };
    }),
    pathPrefixes: list(o.pathPrefixes, `${what}.pathPrefixes`).map((p, i) => {
      const prefix = text(p, `${what}.pathPrefixes[${i}]`);
      if (!prefix.startsWith('/'))
        throw fail(`${what}.pathPrefixes[${i}]`, 'does not start with /');
      return prefix;
    }),
  };
}
