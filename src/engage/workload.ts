/**
 * The parts of a workload that engagements read, as plain JSON from the API server. Only
 * src/k8s speaks client-node; the plan works on these shapes, so it can be tested with
 * literals.
 */
export interface Handler {
  exec?: { command?: string[] };
  httpGet?: { path?: string; port: number | string; scheme?: string; host?: string };
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number; service?: string };
  sleep?: { seconds: number };
}

export interface Probe extends Handler {
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    resourceFieldRef?: { resource: string; containerName?: string; divisor?: string };
    [key: string]: unknown;
  };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

/** A pod volume: its name and one source (configMap, secret, emptyDir, ...). */
export interface Volume {
  name: string;
  [source: string]: unknown;
}

export interface ContainerPortSpec {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  ports?: ContainerPortSpec[];
  env?: EnvVar[];
  envFrom?: unknown[];
  volumeMounts?: VolumeMount[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { postStart?: Handler; preStop?: Handler };
  securityContext?: { runAsUser?: number; runAsGroup?: number; [key: string]: unknown };
}

export interface WorkloadObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: {
    replicas?: number;
    template: {
      metadata?: { labels?: Record<string, string> };
      spec: {
        containers: Container[];
        volumes?: Volume[];
        securityContext?: { runAsUser?: number; [key: string]: unknown };
      };
    };
  };
}

/** A Service port, as the API server returns it (it defaults `protocol` to TCP). */
export interface ServicePortSpec {
  name?: string;
  port: number;
  /** A number, or the name of a container port; absent means `port`. */
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}

/**
 * Who last applied which fields (metadata.managedFields): a restore reads what the restoring
 * manager already owns, so that its next apply keeps stating it (src/engage/service-switch.ts).
 */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  fieldsV1?: unknown;
}

/** The parts of a Service that intercepts read. */
export interface ServiceObject {
  metadata: {
    name: string;
    namespace: string;
    annotations?: Record<string, string>;
    managedFields?: ManagedFieldsEntry[];
  };
  spec: { selector?: Record<string, string>; ports?: ServicePortSpec[] };
}
