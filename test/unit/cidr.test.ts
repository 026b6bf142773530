import test from 'ava';
import {
  aggregate,
  cidrOfIp,
  contains,
  coveringCidrs,
  formatIp,
  isWithin,
  normaliseCidr,
  overlaps,
  parseCidr,
  parseIp,
  subtract,
} from '../../src/lib/cidr.js';
import { TpError } from '../../src/lib/errors.js';

test('ranges are normalised with their host bits cleared', (t) => {
  t.is(normaliseCidr('10.1.2.3/8'), '10.0.0.0/8');
  t.is(normaliseCidr('198.18.128.77/17'), '198.18.128.0/17');
  t.is(normaliseCidr('0.0.0.0/0'), '0.0.0.0/0');
  t.is(normaliseCidr('255.255.255.255/32'), '255.255.255.255/32');
  t.is(normaliseCidr('FD00:0:0:0:0:0:0:1/64'), 'fd00::/64');
  t.is(normaliseCidr('2001:db8:0:0:1:0:0:1/128'), '2001:db8::1:0:0:1/128');
  t.is(normaliseCidr('::/0'), '::/0');
});

test('IPv6 addresses are written the RFC 5952 way', (t) => {
  const canon = (s: string): string => formatIp(parseIp(s));
  t.is(canon('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  t.is(canon('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1', 'the longest zero run is compressed');
  t.is(canon('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'the first run wins a tie');
  t.is(canon('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group stays');
  t.is(canon('::ffff:10.0.0.1'), '::ffff:a00:1', 'an embedded dotted quad is read');
  t.is(canon('::1'), '::1');
  t.is(canon('1::'), '1::');
});

test('garbage is a usage error naming the value and the expected form', (t) => {
  for (const bad of [
    '10.0.0.0',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/+8',
    '10.0.0/8',
    '010.0.0.0/8',
    'fd00::/129',
    'fe80::1%eth0/64',
    'pods/16',
    '',
  ]) {
    const err = t.throws(() => parseCidr(bad), { instanceOf: TpError }, bad);
    t.like(err, { category: 'usage', code: 'CIDR_INVALID' }, bad);
    t.true(err.message.includes(`"${bad}"`), bad);
    t.regex(err.fix, /address\/prefix-length, e\.g\. 10\.96\.0\.0\/12/);
  }
  const err = t.throws(() => parseIp('10.0.0.256'), { instanceOf: TpError });
  t.like(err, { category: 'usage', code: 'IP_INVALID' });
  t.regex(err.message, /"10\.0\.0\.256"/);
  t.throws(() => parseIp('fe80::1%eth0'), { instanceOf: TpError });
});

test('contains checks the address against the range, per family', (t) => {
  t.true(contains('198.18.0.0/24', '198.18.0.255'));
  t.false(contains('198.18.0.0/24', '198.18.1.0'));
  t.true(contains('0.0.0.0/0', '203.0.113.9'));
  t.true(contains('2001:2::/48', '2001:2:0:ffff::1'));
  t.false(contains('2001:2::/48', '2001:3::1'));
  t.false(contains('::/0', '10.0.0.1'), 'an IPv4 address is in no IPv6 range');
  t.false(contains('0.0.0.0/0', '::ffff:10.0.0.1'));
});

test('two ranges overlap exactly when one holds the other', (t) => {
  t.true(overlaps('198.19.0.0/16', '198.19.0.0/24'));
  t.true(overlaps('198.19.0.0/24', '198.19.0.0/16'));
  t.true(overlaps('10.0.0.0/8', '10.0.0.0/8'));
  t.false(overlaps('198.18.0.0/24', '198.18.1.0/24'));
  t.false(overlaps('10.0.0.0/8', 'a00::/8'));
  t.true(overlaps('fd00::/8', 'fd12:3456::/32'));
  t.true(isWithin('198.18.0.0/15', '198.19.0.0/24'));
  t.false(isWithin('198.19.0.0/24', '198.18.0.0/15'));
});

test('cidrOfIp gives the /32 or /128 of an address', (t) => {
  t.is(cidrOfIp('198.18.0.7'), '198.18.0.7/32');
  t.is(cidrOfIp('2001:2:0:0:0:0:0:7'), '2001:2::7/128');
});

test('aggregate drops duplicates and ranges inside others and merges sibling halves', (t) => {
  t.deepEqual(aggregate(['198.18.0.0/24', '198.18.1.0/24']), ['198.18.0.0/23']);
  t.deepEqual(
    aggregate(['10.0.3.0/24', '10.0.2.0/24', '10.0.0.0/23', '10.0.1.0/24']),
    ['10.0.0.0/22'],
    'merges cascade',
  );
  t.deepEqual(aggregate(['198.18.1.0/24', '198.18.2.0/24']), ['198.18.1.0/24', '198.18.2.0/24']);
  t.deepEqual(aggregate(['10.0.0.0/8', '10.1.0.0/16', '10.0.0.0/8']), ['10.0.0.0/8']);
  t.deepEqual(aggregate(['fd00::/64', '10.0.0.0/8', 'fd00:0:0:1::/64']), [
    '10.0.0.0/8',
    'fd00::/63',
  ]);
  t.deepEqual(aggregate(['0.0.0.0/1', '128.0.0.0/1']), ['0.0.0.0/0']);
  t.deepEqual(aggregate([]), []);
});

test('subtract leaves the exact more specific ranges around a hole', (t) => {
  const rest = subtract(['198.19.0.0/16'], ['198.19.0.0/24']);
  t.deepEqual(rest, [
    '198.19.1.0/24',
    '198.19.2.0/23',
    '198.19.4.0/22',
    '198.19.8.0/21',
    '198.19.16.0/20',
    '198.19.32.0/19',
    '198.19.64.0/18',
    '198.19.128.0/17',
  ]);
  for (const r of rest) t.false(overlaps(r, '198.19.0.0/24'), r);
  t.deepEqual(subtract(['10.0.0.0/24'], ['10.0.0.0/8']), [], 'a range inside a hole vanishes');
  t.deepEqual(subtract(['10.0.0.0/24'], ['10.0.1.0/24']), ['10.0.0.0/24']);
  t.deepEqual(subtract(['fd00::/126'], ['fd00::1/128']), ['fd00::/128', 'fd00::2/127']);
});

test('pod IPs are covered per /16 by their smallest range, at least a /24', (t) => {
  t.deepEqual(coveringCidrs(['198.18.0.3', '198.18.0.9', '198.18.0.200']), ['198.18.0.0/24']);
  t.deepEqual(coveringCidrs(['10.244.0.5']), ['10.244.0.0/24'], 'one pod still gets its /24');
  t.deepEqual(coveringCidrs(['10.244.0.5', '10.244.3.7']), ['10.244.0.0/22']);
  t.deepEqual(coveringCidrs(['10.244.0.5', '10.244.200.1']), ['10.244.0.0/16']);
  t.deepEqual(
    coveringCidrs(['10.244.0.5', '10.245.0.5']),
    ['10.244.0.0/24', '10.245.0.0/24'],
    'two /16s stay two ranges instead of one /15',
  );
  t.deepEqual(coveringCidrs(['fd00:10:244:1::a', 'fd00:10:244:1::b']), ['fd00:10:244:1::/64']);
  t.deepEqual(coveringCidrs(['198.18.0.4', 'fd00::4']), ['198.18.0.0/24', 'fd00::/64']);
  t.deepEqual(coveringCidrs([]), []);
});
