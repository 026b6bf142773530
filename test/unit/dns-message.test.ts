import test from 'ava';
import {
  Rcode,
  RrType,
  buildQuery,
  buildResponse,
  errorResponse,
  readHeader,
  readQuestion,
  readSections,
  truncateResponse,
  udpPayloadLimit,
  withId,
} from '../../src/daemon/dns/message.js';
import { encodeName, nameToString, readName } from '../../src/daemon/dns/name.js';

test('a query round-trips: id, RD, lowercased name, type and class', (t) => {
  const q = buildQuery({ id: 0xbeef, name: 'Echo.Samples.SVC.cluster.local', type: RrType.AAAA });
  t.like(readHeader(q), { id: 0xbeef, qr: false, rd: true, opcode: 0, qdcount: 1, arcount: 0 });
  t.like(readQuestion(q), { name: 'echo.samples.svc.cluster.local', type: RrType.AAAA, class: 1 });
  t.is(readQuestion(q).end, q.length);
});

test('compressed names are followed, and their case lowered', (t) => {
  // Question "a.Example.test", then a name at offset 32: "www" + pointer to "Example.test".
  const q = buildQuery({ id: 1, name: 'a.Example.test', type: RrType.A });
  const msg = Buffer.concat([q, Buffer.from([3, 0x77, 0x77, 0x77, 0xc0, 14])]);
  const { wire, end } = readName(msg, q.length);
  t.is(nameToString(wire), 'www.example.test');
  t.is(end, msg.length);
});

test('pointer loops, forward pointers and pointers into the header are rejected', (t) => {
  const q = buildQuery({ id: 1, name: 'a.test', type: RrType.A });
  const at = q.length;
  const self = Buffer.concat([q, Buffer.from([0xc0, at])]);
  const forward = Buffer.concat([q, Buffer.from([0xc0, at + 2, 1, 0x61, 0])]);
  const header = Buffer.concat([q, Buffer.from([0xc0, 2])]);
  for (const msg of [self, forward, header]) {
    t.throws(() => readName(msg, at), { message: /compression pointer/ });
  }
});

test('truncated and malformed messages throw', (t) => {
  const q = buildQuery({ id: 1, name: 'a.test', type: RrType.A });
  t.throws(() => readHeader(Buffer.alloc(5)));
  t.throws(() => readQuestion(q.subarray(0, q.length - 2)));
  t.throws(() => readQuestion(q.subarray(0, 14)));
  const noQuestion = Buffer.from(q);
  noQuestion.writeUInt16BE(0, 4);
  t.throws(() => readQuestion(noQuestion), { message: /no question/ });
  const badLabel = Buffer.from(q);
  badLabel.writeUInt8(0x41, 12);
  t.throws(() => readQuestion(badLabel), { message: /label type/ });
});

test('withId returns a copy with the new id and leaves the original alone', (t) => {
  const q = buildQuery({ id: 7, name: 'a.test', type: RrType.A });
  const copy = withId(q, 9);
  t.is(readHeader(copy).id, 9);
  t.is(readHeader(q).id, 7);
  t.deepEqual(copy.subarray(2), q.subarray(2));
});

test('an error response keeps the id, RD and question and sets QR and the rcode', (t) => {
  const q = buildQuery({ id: 42, name: 'Mixed.Case.test', type: RrType.SRV });
  for (const rcode of [Rcode.servFail, Rcode.nxDomain, Rcode.refused]) {
    const r = errorResponse(q, rcode);
    t.like(readHeader(r), { id: 42, qr: true, rd: true, rcode, qdcount: 1, ancount: 0 });
    // The question as sent, case included: clients that randomise case check it.
    t.deepEqual(r.subarray(12, readQuestion(r).end), q.subarray(12, readQuestion(q).end));
  }
});

test('an EDNS0 query gets an OPT back and states its UDP payload size', (t) => {
  const plain = buildQuery({ id: 1, name: 'a.test', type: RrType.A });
  const edns = buildQuery({ id: 1, name: 'a.test', type: RrType.A, udpSize: 4096 });
  t.is(udpPayloadLimit(plain), 512);
  t.is(udpPayloadLimit(edns), 4096);
  t.is(readHeader(errorResponse(plain, Rcode.servFail)).arcount, 0);
  t.is(readHeader(errorResponse(edns, Rcode.servFail)).arcount, 1);
});

test('records read back with the names inside CNAME, SRV and SOA decompressed', (t) => {
  const q = buildQuery({ id: 3, name: 'web.test', type: RrType.SRV });
  const owner = encodeName('web.test');
  const srv = Buffer.concat([Buffer.from([0, 1, 0, 2, 0x1f, 0x90]), encodeName('a.web.test')]);
  const r = buildResponse(q, {
    rcode: Rcode.noError,
    answers: [{ owner, type: RrType.SRV, class: 1, ttl: 30, rdata: srv }],
  });
  // Compress the SRV target by hand: "a" + pointer to the question's "web.test" at 12.
  const rdStart = r.length - srv.length;
  const compressed = Buffer.concat([
    r.subarray(0, rdStart - 2),
    Buffer.from([0, 6 + 4]),
    srv.subarray(0, 6),
    Buffer.from([1, 0x61, 0xc0, 12]),
  ]);
  const [answer] = readSections(compressed).answers;
  t.deepEqual(answer?.rdata, srv);
  t.throws(() => readSections(compressed.subarray(0, compressed.length - 1)));
});

test('a truncated response keeps the header and question, sets TC and drops the records', (t) => {
  const q = buildQuery({ id: 5, name: 'big.test', type: RrType.A });
  const answers = Array.from({ length: 3 }, (_, i) => ({
    owner: encodeName('big.test'),
    type: RrType.A,
    class: 1,
    ttl: 5,
    rdata: Buffer.from([198, 18, 0, i]),
  }));
  const r = truncateResponse(buildResponse(q, { rcode: Rcode.noError, answers }));
  t.like(readHeader(r), { id: 5, qr: true, tc: true, qdcount: 1, ancount: 0, arcount: 0 });
  t.is(r.length, readQuestion(q).end);
});

test('names with bad labels cannot be encoded', (t) => {
  t.throws(() => encodeName('a..b'));
  t.throws(() => encodeName(`${'x'.repeat(64)}.test`));
  t.throws(() => encodeName(Array.from({ length: 50 }, () => 'abcde').join('.')));
  t.deepEqual(encodeName(''), Buffer.of(0));
  t.deepEqual(encodeName('a.'), encodeName('a'));
});
