/**
 * What a second DNS label can be in the cluster (dns/policy.ts): a two-label name `a.b` whose
 * b is also a public top-level domain goes to the cluster only when b is a namespace or a
 * service of the connected namespace. Listed with the session's own credentials, now and
 * every minute; a list the user may not read is skipped, and the search list still covers
 * every name for clients that apply it.
 */
import { getJson, type KubeTransport } from '../k8s/transport.js';

const REFRESH_MS = 60_000;

interface NameList {
  items: { metadata: { name: string } }[];
}

export class KnownNames {
  private names: ReadonlySet<string>;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly transport: KubeTransport,
    private readonly namespace: string,
    private readonly log: (o: object) => void = () => undefined,
  ) {
    this.names = new Set([namespace]);
  }

  /** Lists once now and then every minute; never fails (a failed list keeps what was known). */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  readonly get = (): ReadonlySet<string> => this.names;

  stop(): void {
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    const paths = ['/api/v1/namespaces', `/api/v1/namespaces/${this.namespace}/services`];
    const lists = await Promise.all(
      paths.map((path) =>
        getJson<NameList>(this.transport, path).catch((err: unknown) => {
          this.log({ msg: 'cannot list names for DNS', path, error: String(err) });
          return undefined;
        }),
      ),
    );
    const next = new Set([this.namespace]);
    // A list that failed this time keeps what it gave before.
    const [namespaces, services] = lists;
    if (namespaces === undefined || services === undefined) for (const n of this.names) next.add(n);
    for (const list of lists) for (const item of list?.items ?? []) next.add(item.metadata.name);
    this.names = next;
  }
}
