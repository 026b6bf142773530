#!/usr/bin/env -S node --
// `--`: Node 20 reads --env-file anywhere on its command line, even after the script, and
// tp replace takes --env-file (Telepresence's flag); after `--` Node reads no options.
// Errors raised before a command runs (an unknown command, say) are rendered here, by the
// same function the commands use.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import { flush, run } from '@oclif/core';
import { renderError } from '../dist/src/cli/render-error.js';

/** The command ids, so that `tp status extra` is reported as an argument status does not take. */
function commandIds() {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../oclif.manifest.json', import.meta.url)));
    return Object.keys(manifest.commands ?? {});
  } catch {
    return [];
  }
}

try {
  await run(process.argv.slice(2), import.meta.url);
  await flush();
} catch (err) {
  const out = renderError(err, process.argv.includes('--json'), Boolean(process.env.TP_DEBUG), {
    commands: commandIds(),
  });
  (out.stream === 'stdout' ? process.stdout : process.stderr).write(`${out.text}\n`);
  process.exitCode = out.exitCode;
}
