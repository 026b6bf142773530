import test from 'ava';
import {
  HEADER_LENGTH,
  HeaderError,
  decodeHeader,
  encodeHeader,
  type FlowHeader,
} from '../../src/netstack/header.js';

const tcp4: FlowHeader = {
  proto: 'tcp',
  family: 4,
  src: { address: '198.19.0.2', port: 40000 },
  dst: { address: '198.18.128.10', port: 53 },
  flowId: 1n,
};

test('an IPv4 TCP header has the documented layout, byte for byte', (t) => {
  const hex = encodeHeader(tcp4).toString('hex');
  t.is(
    hex,
    [
      '54504631', // "TPF1"
      '01', // version
      '06', // TCP
      '04', // IPv4
      '00', // reserved
      '00000000000000000000ffffc6130002', // ::ffff:198.19.0.2
      '9c40', // 40000
      '00000000000000000000ffffc612800a', // ::ffff:198.18.128.10
      '0035', // 53
      '0000000000000001', // flow id
    ].join(''),
  );
  t.is(hex.length / 2, HEADER_LENGTH);
});

test('headers round-trip for UDP, IPv6 and large flow ids', (t) => {
  const cases: FlowHeader[] = [
    tcp4,
    { ...tcp4, proto: 'udp', flowId: 2n ** 64n - 1n },
    {
      proto: 'tcp',
      family: 6,
      src: { address: '2001:2::2', port: 1 },
      dst: { address: '2001:2::8:800:200c:417a', port: 65535 },
      flowId: 42n,
    },
    {
      proto: 'udp',
      family: 6,
      src: { address: '::1', port: 5353 },
      dst: { address: '1:2:3:4:5:6:7:8', port: 9 },
      flowId: 7n,
    },
  ];
  for (const h of cases) t.deepEqual(decodeHeader(encodeHeader(h)), h);
});

test('IPv6 addresses decode in their canonical short form', (t) => {
  const h = {
    ...tcp4,
    family: 6 as const,
    src: { address: '2001:2::2', port: 1 },
    dst: { address: '2001:0002:0000:0000:0000:0000:0000:0001', port: 80 },
  };
  t.is(decodeHeader(encodeHeader(h)).dst.address, '2001:2::1');
});

test('a header with a wrong magic, version, protocol or length is refused', (t) => {
  const good = encodeHeader(tcp4);
  const bad = (mutate: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    mutate(b);
    return b;
  };
  t.throws(() => decodeHeader(bad((b) => b.write('XXXX', 0))), {
    instanceOf: HeaderError,
    message: /magic/,
  });
  t.throws(() => decodeHeader(bad((b) => b.writeUInt8(9, 4))), { message: /version 9/ });
  t.throws(() => decodeHeader(bad((b) => b.writeUInt8(1, 5))), { message: /protocol 1/ });
  t.throws(() => decodeHeader(bad((b) => b.writeUInt8(5, 6))), { message: /family 5/ });
  t.throws(() => decodeHeader(good.subarray(0, 51)), { message: /51 bytes/ });
});
