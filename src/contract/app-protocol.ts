/**
 * What a Service port speaks, as far as its declaration says: its appProtocol (Kubernetes'
 * own `kubernetes.io/h2c`, or an IANA name), else its name read the way Istio reads port
 * names (`http`, `grpc-web`, `tcp-db`). Encrypted protocols count as opaque: the agent
 * cannot read their requests. Undefined when the declaration says nothing known; then the
 * client's first bytes decide.
 */
export type DeclaredProtocol = 'http' | 'h2' | 'tcp';

const BY_NAME: Readonly<Record<string, DeclaredProtocol>> = {
  http: 'http',
  'http1.1': 'http',
  ws: 'http',
  'kubernetes.io/ws': 'http',
  'grpc-web': 'http',
  http2: 'h2',
  h2c: 'h2',
  grpc: 'h2',
  'kubernetes.io/h2c': 'h2',
  https: 'tcp',
  tls: 'tcp',
  grpcs: 'tcp',
  wss: 'tcp',
  'kubernetes.io/wss': 'tcp',
  tcp: 'tcp',
  udp: 'tcp',
  redis: 'tcp',
  mongo: 'tcp',
  mongodb: 'tcp',
  mysql: 'tcp',
  postgres: 'tcp',
  postgresql: 'tcp',
  amqp: 'tcp',
  kafka: 'tcp',
  mqtt: 'tcp',
  memcached: 'tcp',
  nats: 'tcp',
  zookeeper: 'tcp',
  dns: 'tcp',
  smtp: 'tcp',
};

export function declaredProtocol(declared: string | undefined): DeclaredProtocol | undefined {
  if (declared === undefined || declared === '') return undefined;
  const name = declared.toLowerCase();
  const exact = BY_NAME[name];
  if (exact !== undefined) return exact;
  // A port name: `grpc-web` is matched whole above, `http-api` and `tcp-db` by their prefix.
  const prefix = name.split('-')[0] ?? '';
  return name.includes('/') ? undefined : BY_NAME[prefix];
}
