/**
 * Label and annotation keys tp writes in the cluster, all under one DNS prefix, as Kubernetes
 * asks of tools, the field manager of its server-side applies, and tp-manager's default
 * namespace. `tp.dev` stands for the project's domain: one constant to change when it has its
 * own.
 */
export const TP_DOMAIN = 'tp.dev';
export const FIELD_MANAGER = 'tp';
/**
 * Co-owns the values a restore put back, so that a later apply by `tp` which does not state
 * them (an ingest after a replace) leaves them be rather than removing them.
 */
export const FIELD_MANAGER_RESTORED = 'tp-restored';
/** Where tp-manager lives unless TP_MANAGER_NAMESPACE or --manager-namespace says otherwise. */
export const DEFAULT_MANAGER_NAMESPACE = 'tp-system';

/** On a workload: JSON of the engagements on it, by session. */
export const ANNOTATION_ENGAGEMENTS = `${TP_DOMAIN}/engagements`;
/** On a workload: JSON of the target container's fields tp changed, as they were. */
export const ANNOTATION_ORIGINAL = `${TP_DOMAIN}/original`;
/**
 * On a Service: JSON of the targetPorts tp switched to an agent, as they were before tp first
 * switched them: `{"<port>/<protocol>": <targetPort, a number or a name>}`.
 */
export const ANNOTATION_ORIGINAL_TARGETS = `${TP_DOMAIN}/original-target-ports`;
