#!/usr/bin/env node
// Errors raised before a command runs (an unknown command, say) are rendered here, by the
// same function the commands use.
import { flush, run } from '@oclif/core';
import { renderError } from '../dist/src/cli/render-error.js';

try {
  await run(process.argv.slice(2), import.meta.url);
  await flush();
} catch (err) {
  const out = renderError(err, process.argv.includes('--json'), Boolean(process.env.TP_DEBUG));
  (out.stream === 'stdout' ? process.stdout : process.stderr).write(`${out.text}\n`);
  process.exitCode = out.exitCode;
}
