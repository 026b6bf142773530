import test from 'ava';
import { readFileSync } from 'node:fs';
import { HEADER_LENGTH, Verdict, decodeHeader, encodeHeader } from '../../src/netstack/header.js';

// The Go codec (netstack/internal/header) generates these vectors; both codecs must agree on
// every byte of them.
interface Vectors {
  headerSize: number;
  verdicts: Record<string, number>;
  valid: {
    name: string;
    hex: string;
    proto: number;
    family: 4 | 6;
    src: string;
    srcPort: number;
    dst: string;
    dstPort: number;
    flowId: string;
  }[];
  invalid: { name: string; hex: string; reason: string }[];
}

const vectors = JSON.parse(
  readFileSync(new URL('../../netstack/testdata/header-vectors.json', import.meta.url), 'utf8'),
) as Vectors;

test('the header size and verdict bytes match the Go side', (t) => {
  t.is(vectors.headerSize, HEADER_LENGTH);
  t.deepEqual(vectors.verdicts, { ...Verdict });
});

for (const v of vectors.valid) {
  test(`the Go vector "${v.name}" decodes to its fields and encodes back to its bytes`, (t) => {
    const h = decodeHeader(Buffer.from(v.hex, 'hex'));
    t.deepEqual(h, {
      proto: v.proto === 6 ? 'tcp' : 'udp',
      family: v.family,
      src: { address: v.src, port: v.srcPort },
      dst: { address: v.dst, port: v.dstPort },
      flowId: BigInt(v.flowId),
    });
    t.is(encodeHeader(h).toString('hex'), v.hex);
  });
}

test('every invalid Go vector is refused', (t) => {
  for (const v of vectors.invalid) {
    t.throws(() => decodeHeader(Buffer.from(v.hex, 'hex')), undefined, v.name);
  }
});
