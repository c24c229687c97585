/**
 * `responseType: 'chunks'` against real node:http / node:https / node:net servers on 127.0.0.1: body framing
 * (Content-Length, chunked, until close), errors, retries before and never after the first chunk, timeouts,
 * aborts, TLS with the agent's CA, and the axios fallback behind a proxy.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createTlsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import axios from 'axios';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CdssError, HttpError, TimeoutError, ValidationError } from './errors.js';
import { createTestClock } from './testing/clock.js';
import { HttpTransport } from './transport.js';
import { requestHead } from './socket-get.js';
import { listenOnFreePort } from './testing/ports.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let hits = 0;
let lastRequest: { url: string; headers: IncomingMessage['headers'] } | undefined;
const servers: { close(cb: () => void): void; closeAllConnections?: () => void }[] = [];

const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
  hits++;
  lastRequest = { url: req.url ?? '', headers: req.headers };
  handler(req, res);
};

async function listen(server: Server | NetServer): Promise<number> {
  servers.push(server as Server);
  await listenOnFreePort(server);
  return (server.address() as AddressInfo).port;
}

let base: string;
beforeAll(async () => {
  base = `http://127.0.0.1:${await listen(createServer(onRequest))}`;
});
afterEach(() => {
  hits = 0;
  lastRequest = undefined;
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

/** A deterministic body of `n` bytes that differs along its length. */
function body(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 9)) & 0xff;
  return b;
}

/** Reads a `chunks` response, copying each chunk; also keeps the views to check they are reused. */
async function receive(
  t: HttpTransport,
  path: string,
  extra: Partial<Parameters<HttpTransport['request']>[0]> = {},
): Promise<{ bytes: Buffer; views: Uint8Array[]; headers?: Record<string, string>; status: number }> {
  const copies: Buffer[] = [];
  const views: Uint8Array[] = [];
  let headers: Record<string, string> | undefined;
  const res = await t.request({
    method: 'GET',
    path,
    responseType: 'chunks',
    onHeaders: (h) => {
      expect(copies).toHaveLength(0);
      headers = h;
    },
    onChunk: (chunk) => {
      views.push(chunk);
      copies.push(Buffer.from(chunk));
    },
    ...extra,
  });
  expect(res.data).toBeUndefined();
  return { bytes: Buffer.concat(copies), views, ...(headers ? { headers } : {}), status: res.status };
}

describe("responseType 'chunks'", () => {
  it('hands over a Content-Length body in order, from one reused read buffer', async () => {
    const payload = body(3 * 1024 * 1024 + 17);
    handler = (_req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('content-length', payload.length);
      res.end(payload);
    };
    const t = new HttpTransport({ baseUrl: base });
    const got = await receive(t, 'blob');
    expect(got.bytes.equals(payload)).toBe(true);
    expect(got.headers?.['content-type']).toBe('application/octet-stream');
    // Views share one ArrayBuffer (the socket's read buffer), which later reads overwrote: copy what you keep.
    expect(new Set(got.views.map((v) => v.buffer)).size).toBe(1);
    expect(Buffer.concat(got.views).equals(payload)).toBe(false);
    expect(lastRequest?.headers.connection).toBe('close');
  });

  it('decodes a chunked body and one that ends when the server closes', async () => {
    const payload = body(700_000);
    handler = (_req, res) => {
      res.setHeader('content-type', 'multipart/related; boundary=x');
      for (let at = 0; at < payload.length; at += 50_000) res.write(payload.subarray(at, at + 50_000));
      res.end();
    };
    const t = new HttpTransport({ baseUrl: base });
    const chunked = await receive(t, 'chunked');
    expect(chunked.bytes.equals(payload)).toBe(true);

    // HTTP/1.1 without Content-Length or chunking (Orthanc's WADO-RS does this): the body ends at close.
    const raw = createNetServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/dicom\r\nconnection: close\r\n\r\n');
        socket.write(payload.subarray(0, 300_000));
        setTimeout(() => socket.end(payload.subarray(300_000)), 20);
      });
    });
    const rawBase = `http://127.0.0.1:${await listen(raw)}`;
    const untilClose = await receive(new HttpTransport({ baseUrl: rawBase }), 'x');
    expect(untilClose.bytes.equals(payload)).toBe(true);
  });

  it('an empty body gives no chunk', async () => {
    handler = (_req, res) => res.writeHead(204).end();
    const got = await receive(new HttpTransport({ baseUrl: base }), 'none');
    expect(got.status).toBe(204);
    expect(got.bytes).toHaveLength(0);
  });

  it('an error status throws HttpError with the body and hands nothing over; acceptStatus hands it over', async () => {
    handler = (_req, res) =>
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such series"}');
    const t = new HttpTransport({ baseUrl: base, retry: false });
    let chunks = 0;
    const error = (await t
      .request({ method: 'GET', path: 'missing', responseType: 'chunks', onChunk: () => void chunks++ })
      .catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error.status).toBe(404);
    expect(error.responseBody).toEqual({ error: 'no such series' });
    expect(chunks).toBe(0);
    const accepted = await receive(t, 'missing', { acceptStatus: (s) => s === 404 });
    expect(accepted.status).toBe(404);
    expect(accepted.bytes.toString()).toBe('{"error":"no such series"}');
  });

  it('retries a failure before the first chunk, never one after it', async () => {
    const payload = body(400_000);
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(503).end();
        return;
      }
      res.setHeader('content-length', payload.length);
      res.write(payload.subarray(0, 100_000));
      // then the connection breaks mid-body
      setTimeout(() => res.destroy(), 20);
    };
    const t = new HttpTransport({ baseUrl: base, clock: createTestClock(), retry: { maxRetries: 3 } });
    let delivered = 0;
    const error = (await t
      .request({ method: 'GET', path: 'flaky', responseType: 'chunks', onChunk: (c) => void (delivered += c.length) })
      .catch((e: unknown) => e)) as HttpError;
    expect(calls).toBe(2);
    expect(delivered).toBeGreaterThan(0);
    expect(delivered).toBeLessThan(payload.length);
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(/no response \(ECONNRESET\)/);
  });

  it("a throwing onChunk fails the request with the consumer's error, once", async () => {
    handler = (_req, res) => res.end(body(10_000));
    const t = new HttpTransport({ baseUrl: base, clock: createTestClock() });
    const mine = new CdssError('not a DICOM file', { code: 'BAD_PART' });
    const error = await t
      .request({
        method: 'GET',
        path: 'bad',
        responseType: 'chunks',
        onChunk: () => {
          throw mine;
        },
      })
      .catch((e: unknown) => e);
    expect(error).toBe(mine);
    expect(hits).toBe(1);
  });

  it('headers late: TimeoutError and a retry; body stalls: TimeoutError, not retried', async () => {
    handler = () => undefined;
    const t = new HttpTransport({ baseUrl: base, clock: createTestClock(), retry: { maxRetries: 1 } });
    const late = await t
      .request({ method: 'GET', path: 'late', responseType: 'chunks', timeoutMs: 80, onChunk: () => undefined })
      .catch((e: unknown) => e);
    expect(late).toBeInstanceOf(Error);
    expect(hits).toBe(2);
    hits = 0;
    handler = (_req, res) => {
      res.setHeader('content-length', 1000);
      res.write(body(10));
    };
    const stalled = (await t
      .request({ method: 'GET', path: 'stall', responseType: 'chunks', timeoutMs: 80, onChunk: () => undefined })
      .catch((e: unknown) => e)) as TimeoutError;
    expect(TimeoutError.isInstance(stalled)).toBe(true);
    expect(stalled.message).toContain('no data for 80 ms');
    expect(hits).toBe(1);
  });

  it("an abort mid-body rejects with the caller's reason", async () => {
    handler = (_req, res) => {
      res.setHeader('content-length', 1_000_000);
      res.write(body(1000));
    };
    const controller = new AbortController();
    const t = new HttpTransport({ baseUrl: base });
    const reason = new Error('user left');
    const pending = t.request({
      method: 'GET',
      path: 'abort',
      responseType: 'chunks',
      signal: controller.signal,
      onChunk: () => controller.abort(reason),
    });
    await expect(pending).rejects.toBe(reason);
  });

  it('refreshes credentials after a 401 and sends them', async () => {
    let token = 'old';
    handler = (req, res) => {
      if (req.headers.authorization !== 'Bearer new') res.writeHead(401).end();
      else res.end('secret pixels');
    };
    const t = new HttpTransport({
      baseUrl: base,
      auth: {
        authorize: (req) => {
          req.headers['authorization'] = `Bearer ${token}`;
          return Promise.resolve();
        },
        onUnauthorized: () => {
          token = 'new';
          return Promise.resolve(true);
        },
      },
    });
    const got = await receive(t, 'auth');
    expect(got.bytes.toString()).toBe('secret pixels');
    expect(hits).toBe(2);
  });

  it('refuses a header that would split the request, sending nothing', async () => {
    const t = new HttpTransport({ baseUrl: base });
    const error = await t
      .request({
        method: 'GET',
        path: 'x',
        responseType: 'chunks',
        headers: { 'x-note': 'a\r\nx-injected: 1' },
        onChunk: () => undefined,
      })
      .catch((e: unknown) => e);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect(hits).toBe(0);
    expect(() => requestHead('GET', new URL('http://h/p?q=1'), { 'bad name:': 'v' })).toThrow(/invalid HTTP header/);
    expect(requestHead('GET', new URL('http://h:81/p?q=1'), { accept: 'a/b' })).toBe(
      'GET /p?q=1 HTTP/1.1\r\nhost: h:81\r\naccept: a/b\r\nconnection: close\r\n\r\n',
    );
  });

  it('needs onChunk', async () => {
    const t = new HttpTransport({ baseUrl: base });
    await expect(t.request({ method: 'GET', path: 'x', responseType: 'chunks' })).rejects.toThrow(ValidationError);
  });

  it('reads https with the CA of the axios instance, and refuses an unknown certificate', async () => {
    const cert = readFileSync(new URL('./__fixtures__/test-tls-cert.pem', import.meta.url));
    const key = readFileSync(new URL('./__fixtures__/test-tls-key.pem', import.meta.url));
    const payload = body(600_000);
    const port = await listen(createTlsServer({ cert, key }, (_req, res) => res.end(payload)));
    const trusting = new HttpTransport({
      baseUrl: `https://127.0.0.1:${port}`,
      axios: axios.create({ httpsAgent: new HttpsAgent({ ca: cert }) }),
    });
    expect((await receive(trusting, 'tls')).bytes.equals(payload)).toBe(true);
    const strict = new HttpTransport({ baseUrl: `https://127.0.0.1:${port}`, retry: false });
    const error = (await strict
      .request({ method: 'GET', path: 'tls', responseType: 'chunks', onChunk: () => undefined })
      .catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(/SELF_SIGNED|self[- ]signed|unable to verify/i);
  });

  it('behind a proxy the body comes through axios and is handed over the same way', async () => {
    const payload = body(300_000);
    handler = (_req, res) => res.end(payload);
    const port = Number(new URL(base).port);
    // The test server plays the proxy: axios then sends the absolute URL in the request line.
    const t = new HttpTransport({
      baseUrl: 'http://pacs.invalid:8042',
      axios: axios.create({ proxy: { protocol: 'http', host: '127.0.0.1', port } }),
    });
    const got = await receive(t, 'series/1');
    expect(got.bytes.equals(payload)).toBe(true);
    expect(lastRequest?.url).toBe('http://pacs.invalid:8042/series/1');
  });
});
