/**
 * Which names are the cluster's. A pod's resolver applies its search list and asks the cluster
 * DNS for everything; tp writes the same search list into the shared resolv.conf, so every
 * client that applies it (glibc, musl, Go, Node) sends tp the full cluster names first, and
 * those go to the cluster. What is left is a name asked as typed, by a client that skips the
 * search list (`dig echo.samples`) or after the search list found nothing. For those:
 *
 * - under the cluster domain: the cluster;
 * - a reverse name of an address in the cluster's routed ranges: the cluster (its DNS answers
 *   PTR for services and pods); other reverse names: the previous resolver (Docker's, which
 *   knows its containers' addresses);
 * - one label (`echo`): the cluster as `echo.<ns>.svc.<domain>`, then the previous resolver,
 *   so a Docker container's name still resolves unless the cluster has that name;
 * - two labels `a.b`: the cluster first (`a.b.<ns>.svc.<domain>`, a pod of a headless service,
 *   then `a.b.svc.<domain>`, a service in namespace b), unless b is a top-level domain of the
 *   public DNS root zone and neither a namespace nor a service of the connected namespace:
 *   `example.com` goes straight to the previous resolver and never waits for the cluster.
 *   Telepresence decides the same question with a short list of excluded suffixes (.com .io
 *   .net .org .ru); tp uses the whole root zone, from the `tlds` package, and lets a real
 *   cluster name win (a namespace `dev`, a headless service `store`: both are TLDs too);
 * - `a.b.svc`: the cluster as `a.b.svc.<domain>`;
 * - anything else: the previous resolver.
 */
import { isIP } from 'node:net';
import tlds from 'tlds' with { type: 'json' };

// With the special-use names (RFC 6761, 6762, 7686, 9476; ICANN's .internal), which are not in
// the root zone but are never a cluster's either: `printer.local` is an mDNS name.
const special = ['local', 'localhost', 'invalid', 'test', 'example', 'onion', 'alt', 'internal'];
const publicTlds: ReadonlySet<string> = new Set([...tlds, ...special]);

export interface ClusterNames {
  /** e.g. `cluster.local`, lowercased, no dots at either end. */
  domain: string;
  /** The connected namespace. */
  namespace: string;
  /**
   * What a second label can be in the cluster, as far as tp knows: the namespaces and the
   * connected namespace's services (at least the connected namespace itself).
   */
  known: () => ReadonlySet<string>;
  /** True when the address is in a range routed to the cluster. */
  isClusterAddress?: (ip: string) => boolean;
}

export type NameRoute =
  | { to: 'cluster' }
  /** Try these names in the cluster, in order, then the previous resolver. */
  | { to: 'expand'; candidates: string[] }
  | { to: 'upstream' };

export function routeName(name: string, names: ClusterNames): NameRoute {
  const { domain, namespace } = names;
  if (name === domain || name.endsWith(`.${domain}`)) return { to: 'cluster' };
  const reversed = reverseAddress(name);
  if (reversed !== undefined) {
    return reversed !== '' && names.isClusterAddress?.(reversed) === true
      ? { to: 'cluster' }
      : { to: 'upstream' };
  }
  const labels = name === '' ? [] : name.split('.');
  const under = (suffix: string): string => `${name}.${suffix}`;
  if (labels.length === 1)
    return { to: 'expand', candidates: [under(`${namespace}.svc.${domain}`)] };
  if (labels.length === 2) {
    const last = labels[1] ?? '';
    if (publicTlds.has(last) && !names.known().has(last)) return { to: 'upstream' };
    return {
      to: 'expand',
      candidates: [under(`${namespace}.svc.${domain}`), under(`svc.${domain}`)],
    };
  }
  if (labels.length === 3 && labels[2] === 'svc') {
    return { to: 'expand', candidates: [under(domain)] };
  }
  return { to: 'upstream' };
}

/**
 * The address a reverse name stands for: `4.3.2.1.in-addr.arpa` → `1.2.3.4`, 32 nibbles under
 * `ip6.arpa` → an IPv6 address. '' for a reverse name that is not one whole address (a
 * zone, as in an SOA query); undefined for names that are not reverse names at all.
 */
export function reverseAddress(name: string): string | undefined {
  const v4 = /^(.*)\.in-addr\.arpa$/.exec(name);
  if (v4 !== null || name === 'in-addr.arpa') {
    const parts = (v4?.[1] ?? '').split('.').reverse();
    const ip = parts.join('.');
    return parts.length === 4 && isIP(ip) === 4 ? ip : '';
  }
  const v6 = /^(.*)\.ip6\.arpa$/.exec(name);
  if (v6 !== null || name === 'ip6.arpa') {
    const nibbles = (v6?.[1] ?? '').split('.').reverse();
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/.test(n))) return '';
    const groups = Array.from({ length: 8 }, (_, i) => nibbles.slice(i * 4, i * 4 + 4).join(''));
    return groups.join(':');
  }
  return undefined;
}

/**
 * The client's answer records from the cluster's answer for an expanded name: records owned by
 * the expanded name are given the asked name as owner, as if the short name existed; others
 * (the target of an ExternalName CNAME) are kept as they are. A CNAME from the asked name to
 * the expanded one would also be correct, but it shows the client a name it did not ask for.
 */
export function renameOwners<T extends { name: string }>(
  records: readonly T[],
  expanded: string,
  asked: string,
): T[] {
  const target = expanded.toLowerCase().replace(/\.$/, '');
  return records.map((r) =>
    r.name.toLowerCase().replace(/\.$/, '') === target ? { ...r, name: asked } : r,
  );
}
