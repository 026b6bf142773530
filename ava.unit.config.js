// The unit tier: no Docker, no cluster.
export default {
  files: ['test/unit/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  // tsx registers in child processes, not in worker threads.
  workerThreads: false,
  timeout: '30s',
};
