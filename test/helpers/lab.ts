import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const state = process.env.TP_LAB_STATE ?? '/var/lib/tp-lab';

/** The lab's samples image (lab/samples): static tools such as `ping` for images without them. */
export function samplesImage(): string {
  const tag = readFileSync(join(state, 'samples.tag'), 'utf8').trim();
  return `127.0.0.1:5000/tp-lab/samples:${tag}`;
}

/** tp-lab/dnsutils: Debian with dig and getent, the same image the `samples/dnsutils` pod runs. */
export function dnsutilsImage(): string {
  return readFileSync(join(state, 'dnsutils.ref'), 'utf8').trim();
}
