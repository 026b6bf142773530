/**
 * `--http-header name=value` and `--http-path-prefix /p` of intercept and wiretap: the HTTP
 * filter they make (headers all must match, prefixes any may), and how tp tells it back to
 * the user, in Telepresence's words.
 */
import type { HttpFilter } from '../contract/agent.js';
import { HEADER_NAME, HEADER_VALUE } from '../contract/http-filter.js';
import { TpError } from '../lib/errors.js';

export type HeaderMatch = HttpFilter['headers'][number];

const headerUsage = (flag: string, why: string): TpError =>
  new TpError('usage', `--http-header ${flag}: ${why}.`, {
    code: 'HTTP_HEADER_INVALID',
    fix: 'Write it as --http-header name=value, e.g. --http-header x-user=alice.',
  });

const pathUsage = (flag: string, why: string): TpError =>
  new TpError('usage', `--http-path-prefix ${flag}: ${why}.`, {
    code: 'HTTP_PATH_INVALID',
    fix: 'Write it as --http-path-prefix /path, e.g. --http-path-prefix /api.',
  });

export function parseHeaderFlag(flag: string): HeaderMatch {
  const eq = flag.indexOf('=');
  if (eq < 0) throw headerUsage(flag, 'it is not name=value');
  const name = flag.slice(0, eq);
  const value = flag.slice(eq + 1);
  if (name === '') throw headerUsage(flag, 'the header name is empty');
  // Names are case-insensitive on the wire; the agent looks them up in lower case.
  if (!HEADER_NAME.test(name.toLowerCase())) {
    throw headerUsage(
      flag,
      `"${name}" is not a header name (letters, digits and !#$%&'*+-.^_\`|~)`,
    );
  }
  if (value === '') throw headerUsage(flag, 'the value is empty');
  if (!HEADER_VALUE.test(value)) throw headerUsage(flag, 'the value has control characters');
  // HTTP drops the spaces around a field value before anyone compares it: such a value
  // would match no request.
  if (/^[\t ]|[\t ]$/.test(value)) {
    throw headerUsage(flag, 'the value starts or ends with a space, which no request carries');
  }
  return { name: name.toLowerCase(), value };
}

export function parsePathPrefix(flag: string): string {
  if (!flag.startsWith('/')) throw pathUsage(flag, 'a path prefix starts with /');
  // A request line cannot carry them, so a prefix with them would match nothing.
  if (/[\s\p{Cc}]/u.test(flag)) {
    throw pathUsage(JSON.stringify(flag), 'a path has no spaces or control characters');
  }
  return flag;
}

/** The filter the flags make; undefined without any, as the engagement then takes all of TCP. */
export function filterOf(
  headers: readonly string[],
  prefixes: readonly string[],
): HttpFilter | undefined {
  if (headers.length === 0 && prefixes.length === 0) return undefined;
  const parsed = headers.map(parseHeaderFlag);
  return {
    headers: parsed.filter(
      (h, i) => parsed.findIndex((o) => o.name === h.name && o.value === h.value) === i,
    ),
    pathPrefixes: [...new Set(prefixes.map(parsePathPrefix))],
  };
}

/** `x-user` → `X-User`: how header names are usually written, and how Telepresence shows them. */
export function canonicalHeaderName(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1).toLowerCase())
    .join('-');
}

/** "a", "a and b", "a, b and c". */
function joined(items: readonly string[], word: string): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${word} ${items.at(-1) ?? ''}`;
}

/**
 * What an engagement takes: "all TCP connections", or e.g. "HTTP requests with path-prefix
 * /api and header 'X-User: margret'".
 */
export function describeFilter(filter: HttpFilter | undefined): string {
  if (filter === undefined) return 'all TCP connections';
  const parts: string[] = [];
  if (filter.pathPrefixes.length > 0) {
    parts.push(`path-prefix ${joined(filter.pathPrefixes, 'or')}`);
  }
  if (filter.headers.length > 0) {
    const shown = filter.headers.map((h) => `'${canonicalHeaderName(h.name)}: ${h.value}'`);
    parts.push(`${shown.length === 1 ? 'header' : 'headers'} ${joined(shown, 'and')}`);
  }
  return parts.length === 0 ? 'all HTTP requests' : `HTTP requests with ${parts.join(' and ')}`;
}

/** Whether two filters take the same requests as written: equal as sets, in any order. */
export function sameFilter(a: HttpFilter | undefined, b: HttpFilter | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const headers = (f: HttpFilter): Set<string> =>
    new Set(f.headers.map((h) => JSON.stringify([h.name.toLowerCase(), h.value])));
  return (
    sameSet(headers(a), headers(b)) && sameSet(new Set(a.pathPrefixes), new Set(b.pathPrefixes))
  );
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
