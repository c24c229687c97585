/**
 * The transport against a real node:http server on 127.0.0.1 (port 0): timeouts, aborts, streams,
 * compression and progress, where a mock would hide what sockets do.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RetryError, TimeoutError, type HttpError } from './errors.js';
import { systemClock } from './clock.js';
import { createTestClock } from './testing/clock.js';
import { HttpTransport } from './transport.js';
import { listenOnFreePort } from './testing/ports.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let hits = 0;
const open = new Set<ServerResponse>();
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    open.add(res);
    res.on('close', () => open.delete(res));
    handler(req, res);
  });
  await listenOnFreePort(server);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
});
beforeEach(() => {
  hits = 0;
  for (const res of open) res.destroy();
});
afterAll(async () => {
  for (const res of open) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A handler that never answers (until the test ends). */
const hang: Handler = () => undefined;

/** Waits until `predicate` holds (polling; bounded), so tests do not depend on how busy the machine is. */
async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !predicate(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!predicate()) throw new Error('condition not reached within 10 s');
}

/** Counts attempts on the client side (a request aborted before connecting never reaches the server). */
function attemptCounter(): { count: () => number; hooks: { onRequest: () => void } } {
  let n = 0;
  return { count: () => n, hooks: { onRequest: () => void n++ } };
}

describe('HttpTransport on a real socket', () => {
  it('raises TimeoutError when no response arrives within timeoutMs', async () => {
    handler = hang;
    const attempts = attemptCounter();
    const t = new HttpTransport({ baseUrl: base, retry: false, hooks: attempts.hooks });
    const error = (await t
      .request({ method: 'GET', path: 'slow', timeoutMs: 100 })
      .catch((e: unknown) => e)) as TimeoutError;
    expect(TimeoutError.isInstance(error)).toBe(true);
    expect(error.timeoutMs).toBe(100);
    expect(error.message).toContain(`GET ${base}/slow`);
    expect(attempts.count()).toBe(1);
  });

  it('retries timeouts of idempotent requests, then raises RetryError of TimeoutErrors', async () => {
    handler = hang;
    const attempts = attemptCounter();
    const t = new HttpTransport({
      baseUrl: base,
      timeoutMs: 50,
      clock: createTestClock(),
      retry: { maxRetries: 1 },
      hooks: attempts.hooks,
    });
    const error = (await t.request({ method: 'GET', path: 'slow' }).catch((e: unknown) => e)) as RetryError;
    expect(RetryError.isInstance(error)).toBe(true);
    expect(error.errors).toHaveLength(2);
    expect(error.errors.every((e) => TimeoutError.isInstance(e))).toBe(true);
    expect(attempts.count()).toBe(2);
  });

  it("rethrows the caller's abort reason and never retries it", async () => {
    handler = hang;
    // A clock whose sleep ignores the signal: the transport itself must refuse to retry the abort.
    const clock = { now: () => Date.now(), sleep: () => Promise.resolve() };
    const t = new HttpTransport({ baseUrl: base, clock, retry: { maxRetries: 5 } });
    const controller = new AbortController();
    const reason = new Error('user cancelled');
    const pending = t.request({ method: 'GET', path: 'slow', signal: controller.signal });
    await until(() => hits === 1);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await new Promise((r) => setTimeout(r, 50));
    expect(hits).toBe(1);
  });

  it('an AbortError by default; an already aborted signal sends nothing', async () => {
    handler = hang;
    const t = new HttpTransport({ baseUrl: base });
    const controller = new AbortController();
    controller.abort();
    await expect(t.request({ method: 'GET', path: 'x', signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(hits).toBe(0);
  });

  it('an abort while a token refresh is pending rejects at once, without sending', async () => {
    handler = (_req, res) => res.end('{}');
    let release: (() => void) | undefined;
    const auth = {
      authorize: () => new Promise<void>((resolve) => (release = resolve)),
    };
    const t = new HttpTransport({ baseUrl: base, auth });
    const controller = new AbortController();
    const pending = t.request({ method: 'GET', path: 'x', signal: controller.signal });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(new Error('gave up waiting for a token'));
    await expect(pending).rejects.toThrow('gave up waiting for a token');
    release?.();
    await new Promise((r) => setTimeout(r, 20));
    expect(hits).toBe(0);
  });

  it('an abort during the backoff sleep stops at once, without another attempt', async () => {
    handler = (_req, res) => {
      res.statusCode = 503;
      res.end();
    };
    // The real clock's sleep, noting when the (long) backoff has begun; the abort lands inside it.
    let sleeping = false;
    const clock = {
      now: () => systemClock.now(),
      sleep: (ms: number, signal?: AbortSignal) => {
        sleeping = true;
        return systemClock.sleep(ms, signal);
      },
    };
    const t = new HttpTransport({ baseUrl: base, clock, retry: { baseDelayMs: 60_000, random: () => 0.99 } });
    const controller = new AbortController();
    const pending = t.request({ method: 'GET', path: 'x', signal: controller.signal });
    await until(() => sleeping);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    expect(hits).toBe(1);
  });

  it('returns a stream whose body can be read after the timeout would have fired', async () => {
    handler = (_req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.write(Buffer.alloc(1000, 1));
      setTimeout(() => res.end(Buffer.alloc(1000, 2)), 1500);
    };
    const t = new HttpTransport({ baseUrl: base });
    const res = await t.request<Readable>({ method: 'GET', path: 'blob', responseType: 'stream', timeoutMs: 1000 });
    const chunks: Buffer[] = [];
    for await (const chunk of res.data) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).length).toBe(2000);
  });

  it('decompress: false with acceptEncoding identity leaves the bytes as sent; default decompresses', async () => {
    const body = JSON.stringify({ big: 'x'.repeat(1000) });
    let acceptEncoding: string | undefined;
    handler = (req, res) => {
      acceptEncoding = req.headers['accept-encoding'];
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-encoding', 'gzip');
      res.end(gzipSync(body));
    };
    const t = new HttpTransport({ baseUrl: base });
    const raw = await t.request<Buffer>({
      method: 'GET',
      path: 'z',
      responseType: 'arraybuffer',
      decompress: false,
      acceptEncoding: 'identity',
    });
    expect(acceptEncoding).toBe('identity');
    expect(raw.data.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const parsed = await t.request<{ big: string }>({ method: 'GET', path: 'z' });
    expect(parsed.data.big).toHaveLength(1000);
  });

  it('reports download and upload progress', async () => {
    handler = (req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-length', '200000');
        res.end(Buffer.alloc(200_000));
      });
    };
    const t = new HttpTransport({ baseUrl: base });
    const down: number[] = [];
    const up: number[] = [];
    await t.request({
      method: 'PUT',
      path: 'up',
      body: Buffer.alloc(100_000),
      responseType: 'arraybuffer',
      onDownloadProgress: (p) => down.push(p.loaded),
      onUploadProgress: (p) => up.push(p.loaded),
    });
    expect(down.at(-1)).toBe(200_000);
    expect(up.at(-1)).toBe(100_000);
  });

  it('sends a plain Uint8Array body (a view of part of a larger buffer) as its bytes', async () => {
    let received = Buffer.alloc(0);
    handler = (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        received = Buffer.concat(parts);
        res.end();
      });
    };
    const whole = new Uint8Array([9, 1, 2, 3, 9]);
    const t = new HttpTransport({ baseUrl: base });
    await t.request({ method: 'PUT', path: 'bytes', body: whole.subarray(1, 4), responseType: 'text' });
    expect([...received]).toEqual([1, 2, 3]);
  });

  it('sends a Readable body once and never retries it', async () => {
    let received = 0;
    handler = (req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => {
        res.statusCode = 503;
        res.end();
      });
    };
    const t = new HttpTransport({ baseUrl: base, clock: createTestClock() });
    const error = (await t
      .request({ method: 'PUT', path: 'stream', body: Readable.from([Buffer.alloc(10), Buffer.alloc(5)]) })
      .catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(503);
    expect(hits).toBe(1);
    expect(received).toBe(15);
  });
});
