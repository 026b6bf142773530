// The docker tier: needs a Docker engine (sudo lab/up).
export default {
  files: ['test/docker/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  // tsx registers in child processes, not in worker threads.
  workerThreads: false,
  timeout: '5m',
  // Tests share one engine; two at a time keeps a 2-core machine responsive.
  concurrency: 2,
};
