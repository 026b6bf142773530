/**
 * Debug logging for humans chasing a problem: off unless TP_DEBUG is set, always to stderr,
 * each line prefixed with its area (`tp:docker`, `tp:k8s`, ...).
 */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.TP_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

export type DebugFn = (message: string) => void;

export function debugLogger(area: string, env: NodeJS.ProcessEnv = process.env): DebugFn {
  if (!debugEnabled(env)) return () => undefined;
  return (message) => {
    process.stderr.write(`${new Date().toISOString()} tp:${area} ${message}\n`);
  };
}
