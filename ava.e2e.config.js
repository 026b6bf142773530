// The e2e tier: needs the lab cluster.
export default {
  files: ['test/e2e/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  // tsx registers in child processes, not in worker threads.
  workerThreads: false,
  timeout: '5m',
  // Tests share one engine; two at a time keeps a 2-core machine responsive.
  concurrency: 2,
};
