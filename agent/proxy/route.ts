/**
 * Which session a request goes to (docs/intercepts.md). Header-based intercepts are asked
 * first, then path-only ones, as Telepresence orders them, so a developer's personal
 * `x-user` intercept wins over a colleague's `/admin` one. What no intercept takes goes to
 * the app; every wiretap whose filter matches gets a copy either way.
 */
import type { HttpFilter, Tap } from '../../src/contract/agent.js';

/** What a filter looks at: the path (with its query) and the headers, by lower-case name. */
export interface RequestView {
  path: string;
  header(name: string): string | string[] | undefined;
}

export interface Route<T extends Tap> {
  intercept: T | undefined;
  wiretaps: T[];
}

function headerMatches(view: RequestView, name: string, value: string): boolean {
  const got = view.header(name);
  return Array.isArray(got) ? got.includes(value) : got === value;
}

export function matches(filter: HttpFilter | undefined, view: RequestView): boolean {
  if (filter === undefined) return true;
  if (!filter.headers.every((h) => headerMatches(view, h.name, h.value))) return false;
  return (
    filter.pathPrefixes.length === 0 || filter.pathPrefixes.some((p) => view.path.startsWith(p))
  );
}

/** Header-based first, then path-only, then those without a filter; older first within each. */
const rank = (t: Tap): number => (t.filter === undefined ? 2 : t.filter.headers.length > 0 ? 0 : 1);

export function orderIntercepts<T extends Tap>(taps: readonly T[]): T[] {
  return taps
    .map((t, i) => ({ t, i }))
    .sort((a, b) => rank(a.t) - rank(b.t) || a.i - b.i)
    .map(({ t }) => t);
}

/** `intercepts` in orderIntercepts' order. */
export function route<T extends Tap>(
  intercepts: readonly T[],
  wiretaps: readonly T[],
  view: RequestView,
): Route<T> {
  return {
    intercept: intercepts.find((t) => matches(t.filter, view)),
    wiretaps: wiretaps.filter((t) => matches(t.filter, view)),
  };
}

/** True when every request would go the same way: no tap looks into HTTP. */
export function connectionLevel(taps: readonly Tap[]): boolean {
  return taps.every((t) => t.filter === undefined);
}
