/** Where HTTP/1 messages end, read from the bytes as a proxy passes them on unchanged. */
import test from 'ava';
import {
  ChunkedScanner,
  WireError,
  keepsAlive,
  parseHead,
  requestFraming,
  responseFraming,
} from '../../agent/proxy/http1-wire.js';

const head = (text: string, kind: 'request' | 'response' = 'request') =>
  parseHead(Buffer.from(`${text}\r\n\r\n`, 'latin1'), kind);

test('a chunked body ends after its last chunk and trailers, however the bytes are split', (t) => {
  const body = '5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 42\r\n\r\n';
  const next = 'GET /next HTTP/1.1\r\n';
  const bytes = Buffer.from(body + next, 'latin1');
  for (let size = 1; size <= bytes.length; size += 1) {
    const scanner = new ChunkedScanner();
    let consumed = 0;
    let done = false;
    for (let i = 0; i < bytes.length && !done; i += size) {
      const r = scanner.feed(bytes.subarray(i, i + size));
      consumed += r.used;
      done = r.done;
    }
    t.true(done, `split every ${size}`);
    t.is(consumed, body.length, `split every ${size}`);
  }
});

test('malformed chunk framing is refused rather than guessed at', (t) => {
  for (const bad of ['zz\r\n', '5\r\nhelloXX', '5\nhello\r\n', '1234567890abcdef0\r\n']) {
    t.throws(() => new ChunkedScanner().feed(Buffer.from(bad)), { instanceOf: WireError }, bad);
  }
});

test('a request with both Content-Length and chunked, or two lengths, is refused', (t) => {
  t.throws(() =>
    requestFraming(head('POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked')),
  );
  t.throws(() => requestFraming(head('POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6')));
  t.throws(() => requestFraming(head('POST / HTTP/1.1\r\nTransfer-Encoding: gzip')));
  t.deepEqual(requestFraming(head('POST / HTTP/1.1\r\nContent-Length: 5, 5')), {
    kind: 'length',
    length: 5,
  });
  t.deepEqual(requestFraming(head('GET / HTTP/1.1\r\nHost: x')), { kind: 'none' });
});

test('folded header lines and names with spaces are refused', (t) => {
  t.throws(() => head('GET / HTTP/1.1\r\nX-A: 1\r\n continued'), { instanceOf: WireError });
  t.throws(() => head('GET / HTTP/1.1\r\nX-A : 1'), { instanceOf: WireError });
  t.throws(() => head('GET / HTTP/2.0'), { instanceOf: WireError });
});

test('headers keep their order and duplicates, with names in lower case', (t) => {
  const h = head('GET /p?q=1 HTTP/1.1\r\nX-Dup: a\r\nHost: h\r\nx-dup: b');
  t.is(h.method, 'GET');
  t.is(h.target, '/p?q=1');
  t.deepEqual(h.headers, [
    ['x-dup', 'a'],
    ['host', 'h'],
    ['x-dup', 'b'],
  ]);
});

test('a response to HEAD, a 204, 304 or 1xx has no body; one without a length ends with the connection', (t) => {
  const ok = head('HTTP/1.1 200 OK\r\nContent-Length: 10', 'response');
  t.deepEqual(responseFraming(ok, 'HEAD'), { kind: 'none' });
  t.deepEqual(responseFraming(ok, 'GET'), { kind: 'length', length: 10 });
  t.deepEqual(responseFraming(head('HTTP/1.1 304 Not Modified', 'response'), 'GET'), {
    kind: 'none',
  });
  t.deepEqual(responseFraming(head('HTTP/1.1 100 Continue', 'response'), 'POST'), {
    kind: 'none',
  });
  const open = head('HTTP/1.1 200 OK', 'response');
  t.deepEqual(responseFraming(open, 'GET'), { kind: 'close' });
  t.false(keepsAlive(head('GET / HTTP/1.1'), open, { kind: 'close' }));
});

test('the connection stays open unless either side says close, or HTTP/1.0 does not ask', (t) => {
  const ok = head('HTTP/1.1 200 OK\r\nContent-Length: 0', 'response');
  const framing = { kind: 'none' } as const;
  t.true(keepsAlive(head('GET / HTTP/1.1'), ok, framing));
  t.false(keepsAlive(head('GET / HTTP/1.1\r\nConnection: close'), ok, framing));
  t.false(keepsAlive(head('GET / HTTP/1.0'), ok, framing));
  t.true(keepsAlive(head('GET / HTTP/1.0\r\nConnection: keep-alive'), ok, framing));
  t.false(
    keepsAlive(
      head('GET / HTTP/1.1'),
      head('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0', 'response'),
      framing,
    ),
  );
});
