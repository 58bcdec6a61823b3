// The gateway's HTTP/1.1 client to the replicas: framing, the keep-alive pool, and failures, against
// node:http servers and raw sockets that answer byte by byte or misbehave on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { UPSTREAM_ERRORS, UpstreamClient, type UpstreamCall, type UpstreamRequest } from '../../host/upstreamClient.js';

interface Answer {
  status: number;
  headers: string[];
  body: string;
  trailers: string[];
  chunks: number;
}

/** One request; resolves with the response or rejects with the client's error. */
function send(client: UpstreamClient, r: Partial<UpstreamRequest> & { port: number }, onCall?: (c: UpstreamCall) => void): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const a: Answer = { status: 0, headers: [], body: '', trailers: [], chunks: 0 };
    const parts: Buffer[] = [];
    const call = client.request(
      { host: '127.0.0.1', method: 'GET', path: '/', headers: ['host', 'x'], body: null, timeoutMs: 5000, ...r },
      {
        onHeaders: (status, raw) => Object.assign(a, { status, headers: raw }),
        onData: (c) => {
          a.chunks++;
          parts.push(Buffer.from(c));
        },
        onComplete: (t) => resolve({ ...a, body: Buffer.concat(parts).toString(), trailers: t }),
        onError: (e) => reject(Object.assign(e, { answer: { ...a, body: Buffer.concat(parts).toString() } })),
      },
    );
    if (call) onCall?.(call);
  });
}

/** A raw TCP server: `onConnection` gets each socket and the request bytes as they come. */
async function rawServer(onData: (socket: net.Socket, data: string, connection: number) => void): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const k = n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d) => onData(s, d.toString('latin1'), k));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => n,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Writes `text` one byte per write, each on its own turn. */
async function dribble(s: net.Socket, text: string): Promise<void> {
  for (const ch of text) {
    s.write(ch, 'latin1');
    await new Promise((r) => setImmediate(r));
  }
}

async function httpServer(handler: http.RequestListener): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const server = http.createServer(handler);
  server.on('connection', () => n++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => n,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` with a client of `cap` connections per upstream, then closes both. */
async function withClient(srv: { close(): Promise<void> }, cap: number, fn: (client: UpstreamClient) => Promise<void>): Promise<void> {
  const client = new UpstreamClient(cap);
  try {
    await fn(client);
  } finally {
    client.close();
    await srv.close();
  }
}

test('a chunked response read one byte at a time: body, chunk extensions and trailers', async () => {
  const srv = await rawServer((s) => {
    void dribble(s, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\n\r\n');
  });
  await withClient(srv, 4, async (client) => {
    const a = await send(client, { port: srv.port });
    assert.equal(a.status, 200);
    assert.deepEqual(a.headers, ['Transfer-Encoding', 'chunked', 'X-A', '1']);
    assert.equal(a.body, 'hello, world');
    assert.deepEqual(a.trailers, ['X-Checksum', 'abc']);
  });
});

test('a chunked response in one read is handed over chunk by chunk, without copies of the whole', async () => {
  const srv = await rawServer((s) => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n'));
  await withClient(srv, 4, async (client) => {
    const a = await send(client, { port: srv.port });
    assert.deepEqual([a.body, a.chunks, a.trailers], ['abcdef', 2, []]);
  });
});

test('keep-alive: sequential requests reuse one connection; a body goes with its own content-length', async () => {
  const seen: Array<{ method: string; length: string | undefined; body: string }> = [];
  const srv = await httpServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, length: req.headers['content-length'], body });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${body.length}`);
    });
  });
  await withClient(srv, 4, async (client) => {
    for (let i = 0; i < 5; i++) {
      const a = await send(client, { port: srv.port, method: 'POST', body: Buffer.from('x'.repeat(i * 10)) });
      assert.equal(a.body, `got ${i * 10}`);
    }
    const big = await send(client, { port: srv.port, method: 'POST', body: Buffer.alloc(200_000, 0x61) });
    assert.equal(big.body, 'got 200000');
    assert.equal(srv.connections(), 1);
    assert.deepEqual(seen.map((s) => s.length), ['0', '10', '20', '30', '40', '200000']);
  });
});

test('the pool opens at most its cap of connections per upstream; the others wait for one', async () => {
  const srv = await httpServer((_req, res) => setTimeout(() => res.end('ok'), 20));
  await withClient(srv, 2, async (client) => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => send(client, { port: srv.port })));
    assert.deepEqual(answers.map((a) => a.body), Array(6).fill('ok'));
    assert.equal(srv.connections(), 2);
  });
});

test('a keep-alive connection the server closed while idle is not used again', async () => {
  // As a server's keep-alive timeout does: a clean close a little after the response.
  const srv = await rawServer((s) => {
    s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    setTimeout(() => s.end(), 30);
  });
  await withClient(srv, 4, async (client) => {
    assert.equal((await send(client, { port: srv.port })).body, 'ok');
    await sleep(150);
    assert.equal((await send(client, { port: srv.port })).body, 'ok');
    assert.equal(srv.connections(), 2);
  });
});

test('a pooled connection the server drops as the next request arrives: that request goes again on a new one', async () => {
  // The server answers the first request of each connection and closes it, unannounced, on the second.
  const srv = await rawServer((s, data) => {
    const st = s as net.Socket & { served?: number };
    if (!data.startsWith('GET')) return;
    st.served = (st.served ?? 0) + 1;
    if (st.served === 1) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    else s.destroy();
  });
  await withClient(srv, 4, async (client) => {
    assert.equal((await send(client, { port: srv.port })).body, 'ok');
    assert.equal((await send(client, { port: srv.port })).body, 'ok');
    assert.equal(srv.connections(), 2);
  });
});

test('a reset in the middle of the response: the head was handed over, then the error', async () => {
  const srv = await rawServer((s) => {
    s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
    setTimeout(() => s.resetAndDestroy(), 20);
  });
  await withClient(srv, 4, async (client) => {
    const e = (await send(client, { port: srv.port }).then(() => assert.fail('expected an error'), (x) => x)) as Error & { answer: Answer };
    assert.equal(e.answer.status, 200);
    assert.equal(e.answer.body, 'partial');
  });
});

test('a response cut short by a clean close (FIN before content-length) is an error, not a complete response', async () => {
  const srv = await rawServer((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
  await withClient(srv, 4, async (client) => {
    const e = (await send(client, { port: srv.port }).then(() => assert.fail('expected an error'), (x) => x)) as Error & { code: string };
    assert.equal(e.code, UPSTREAM_ERRORS.closed.code);
  });
});

test('a body without length runs to the close; 1xx heads are skipped; HEAD, 204 and 304 have no body', async () => {
  const srv = await rawServer((s, data) => {
    if (data.startsWith('GET /close')) s.end('HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end');
    else if (data.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
    else if (data.startsWith('GET /204')) s.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (data.startsWith('GET /304')) s.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n');
  });
  await withClient(srv, 4, async (client) => {
    const closed = await send(client, { port: srv.port, path: '/close' });
    assert.deepEqual([closed.status, closed.headers, closed.body], [200, [], 'until the end']);
    for (const [method, path, status] of [['HEAD', '/', 200], ['GET', '/204', 204], ['GET', '/304', 304]] as const) {
      const a = await send(client, { port: srv.port, method, path });
      assert.deepEqual([a.status, a.body], [status, '']);
    }
    assert.equal(srv.connections(), 2); // the body read to its close took one; the three without a body shared another
  });
});

test('streamed request bodies: chunked without a length, as given with one; written before and after the connection is up', async () => {
  const seen: Array<{ te: string | undefined; length: string | undefined; body: string }> = [];
  const srv = await httpServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ te: req.headers['transfer-encoding'], length: req.headers['content-length'], body });
      res.end('ok');
    });
  });
  await withClient(srv, 4, async (client) => {
    const chunked = send(client, { port: srv.port, method: 'POST', body: 'stream' }, (c) => {
      c.write(Buffer.from('one,'));
      setTimeout(() => {
        c.write(Buffer.from('two'));
        c.end();
      }, 20);
    });
    assert.equal((await chunked).body, 'ok');
    const sized = send(client, { port: srv.port, method: 'POST', body: 'stream', headers: ['host', 'x', 'content-length', '6'] }, (c) => {
      setTimeout(() => {
        c.write(Buffer.from('abc'));
        c.write(Buffer.from('def'));
        c.end();
      }, 10);
    });
    assert.equal((await sized).body, 'ok');
    assert.deepEqual(seen, [{ te: 'chunked', length: undefined, body: 'one,two' }, { te: undefined, length: '6', body: 'abcdef' }]);
    assert.equal(srv.connections(), 1);
  });
});

test('a streamed body that does not match its content-length fails as an invalid request, before or after the connection is up', async () => {
  const srv = await httpServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await withClient(srv, 4, async (client) => {
    const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: NodeJS.ErrnoException) => e.code);
    const sized = ['host', 'x', 'content-length', '4'];
    assert.equal(await codeOf(send(client, { port: srv.port, method: 'POST', body: 'stream', headers: sized }, (c) => c.write(Buffer.from('too long')))), UPSTREAM_ERRORS.invalidRequest.code);
    assert.equal(await codeOf(send(client, { port: srv.port, method: 'POST', body: 'stream', headers: sized }, (c) => setTimeout(() => {
      c.write(Buffer.from('ab'));
      c.end();
    }, 10))), UPSTREAM_ERRORS.invalidRequest.code);
    assert.equal(await codeOf(send(client, { port: srv.port, method: 'POST', body: 'stream', headers: ['content-length', 'x1'] })), UPSTREAM_ERRORS.invalidRequest.code);
  });
});

test('a response that comes before the streamed request body ended: delivered, and its connection is not reused', async () => {
  const srv = await httpServer((_req, res) => res.writeHead(413).end('too big'));
  await withClient(srv, 4, async (client) => {
    const a = await send(client, { port: srv.port, method: 'POST', body: 'stream' }, (c) => c.write(Buffer.from('start of a long body')));
    assert.deepEqual([a.status, a.body], [413, 'too big']);
    assert.equal((await send(client, { port: srv.port })).status, 413);
    assert.equal(srv.connections(), 2);
  });
});

test('bytes after a response: it is delivered, its connection closed, not reused', async () => {
  const srv = await rawServer((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA'));
  await withClient(srv, 4, async (client) => {
    assert.equal((await send(client, { port: srv.port })).body, 'ok');
    assert.equal((await send(client, { port: srv.port })).body, 'ok');
    assert.equal(srv.connections(), 2);
  });
});

test('failures: an invalid header at once, a refused connection with its syscall, no head in time, a malformed head, an abort', async () => {
  const silent = await rawServer(() => {});
  const garbage = await rawServer((s) => s.write('SMTP ready\r\n\r\n'));
  const stalled = await rawServer((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
  const client = new UpstreamClient(4);
  const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: NodeJS.ErrnoException) => `${e.code}${e.syscall ? ` ${e.syscall}` : ''}`);
  try {
    assert.equal(await codeOf(send(client, { port: silent.port, headers: ['bad name', 'v'] })), UPSTREAM_ERRORS.invalidRequest.code);
    assert.equal(await codeOf(send(client, { port: silent.port, headers: ['x', 'a\r\nb'] })), UPSTREAM_ERRORS.invalidRequest.code);
    const closedPort = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => r(p));
      });
    });
    assert.equal(await codeOf(send(client, { port: closedPort })), 'ECONNREFUSED connect');
    assert.equal(await codeOf(send(client, { port: silent.port, timeoutMs: 50 })), UPSTREAM_ERRORS.headersTimeout.code);
    assert.equal(await codeOf(send(client, { port: stalled.port, timeoutMs: 50 })), UPSTREAM_ERRORS.bodyTimeout.code);
    assert.equal(await codeOf(send(client, { port: garbage.port })), UPSTREAM_ERRORS.badResponse.code);
    let settled = false;
    void send(client, { port: silent.port }, (c) => setTimeout(() => c.abort(), 20)).finally(() => (settled = true));
    await sleep(100);
    assert.equal(settled, false, 'an aborted call reports nothing');
  } finally {
    client.close();
    await silent.close();
    await garbage.close();
    await stalled.close();
  }
});
