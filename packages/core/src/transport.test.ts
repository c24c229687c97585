import { http, HttpResponse as MswResponse, type JsonBodyType } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { basicAuth, bearerAuth, oauth2Auth } from './auth.js';
import { HttpError, RetryError, ValidationError } from './errors.js';
import type { Logger } from './logger.js';
import { createRetryPolicy } from './retry.js';
import { createTestClock } from './testing/clock.js';
import { HttpTransport, type RequestContext } from './transport.js';

const BASE = 'http://api.test/fhir';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

/** Answers each request with the next response of the list (the last one repeats), recording the requests. */
function sequence(method: 'get' | 'post' | 'patch' | 'put', path: string, responses: (() => Response)[]): Request[] {
  const calls: Request[] = [];
  server.use(
    http[method](`${BASE}${path}`, ({ request }) => {
      calls.push(request.clone());
      const next = responses[Math.min(calls.length - 1, responses.length - 1)];
      if (next === undefined) throw new Error('no response configured');
      return next();
    }),
  );
  return calls;
}

const status =
  (code: number, headers: Record<string, string> = {}) =>
  () =>
    MswResponse.json({ error: code }, { status: code, headers });
const ok =
  (body: JsonBodyType = { ok: true }) =>
  () =>
    MswResponse.json(body);

function transport(extra: Partial<ConstructorParameters<typeof HttpTransport>[0]> = {}) {
  const clock = createTestClock();
  return { clock, t: new HttpTransport({ baseUrl: `${BASE}/`, clock, retry: { random: () => 0.5 }, ...extra }) };
}

describe('HttpTransport options', () => {
  it('requires an http(s) baseUrl and rejects bad options with a ValidationError', () => {
    expect(() => new HttpTransport({ baseUrl: 'not a url' })).toThrow(ValidationError);
    expect(() => new HttpTransport({ baseUrl: 'ftp://x' })).toThrow(/baseUrl/);
    expect(() => new HttpTransport({ baseUrl: BASE, timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(() => new HttpTransport({ baseUrl: BASE, auth: {} as never })).toThrow(/auth/);
    expect(() => new HttpTransport({ baseUrl: BASE, retry: { maxRetries: -1 } })).toThrow(ValidationError);
  });

  it('strips one trailing slash and builds URLs relative to the base path', async () => {
    const calls = sequence('get', '/Patient/1', [ok()]);
    const t = new HttpTransport({ baseUrl: `${BASE}/` });
    expect(t.baseUrl).toBe(BASE);
    const res = await t.request({
      method: 'GET',
      path: '/Patient/1',
      query: { _count: 2, tag: ['a', 'b'], skip: undefined },
    });
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ ok: true });
    expect(res.headers['content-type']).toContain('application/json');
    expect(calls[0]?.url).toBe(`${BASE}/Patient/1?_count=2&tag=a&tag=b`);
    expect(res.url).toBe(`${BASE}/Patient/1?_count=2&tag=a&tag=b`);
  });

  it('accepts absolute URLs and rejects bad request options', async () => {
    server.use(http.get('http://other.test/x', () => MswResponse.json(1)));
    const t = new HttpTransport({ baseUrl: BASE });
    expect((await t.request({ method: 'GET', path: 'http://other.test/x' })).data).toBe(1);
    await expect(t.request({ method: 'FETCH' as never, path: 'x' })).rejects.toThrow(/method/);
    await expect(t.request({ method: 'GET', path: 42 as never })).rejects.toThrow(/path/);
    await expect(t.request({ method: 'GET', path: 'x', responseType: 'xml' as never })).rejects.toThrow(/responseType/);
    await expect(t.request({ method: 'GET', path: 'x', timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
    await expect(t.request({ method: 'GET', path: 'x', idempotencyKey: '' })).rejects.toThrow(/idempotencyKey/);
    const creds = (await t
      .request({ method: 'GET', path: 'http://u:p@other.test/x' })
      .catch((e: unknown) => e)) as ValidationError;
    expect(creds.issues[0]?.message).toMatch(/credentials/);
    await expect(t.request(null as never)).rejects.toThrow(ValidationError);
  });

  it('moves credentials out of the base URL into basic auth, never into errors', async () => {
    const calls = sequence('get', '/x', [status(404)]);
    const t = new HttpTransport({ baseUrl: 'http://ci:ci-secret@api.test/fhir' });
    const error = await t.request({ method: 'GET', path: 'x' }).catch((e: unknown) => e);
    expect(calls[0]?.headers.get('authorization')).toBe(`Basic ${Buffer.from('ci:ci-secret').toString('base64')}`);
    expect(HttpError.isInstance(error)).toBe(true);
    expect(String((error as HttpError).message)).not.toContain('ci-secret');
    expect((error as HttpError).url).toBe(`${BASE}/x`);
    expect(t.baseUrl).toBe(BASE);
  });

  it('masks credential query parameters in error URLs', async () => {
    sequence('get', '/x', [status(400)]);
    const t = new HttpTransport({ baseUrl: BASE });
    const error = (await t
      .request({ method: 'GET', path: 'x', query: { access_token: 's3cr3t', name: 'x' } })
      .catch((e: unknown) => e)) as HttpError;
    expect(error.url).toBe(`${BASE}/x?access_token=REDACTED&name=x`);
    expect(error.message).not.toContain('s3cr3t');
  });
});

describe('HttpTransport bodies and responses', () => {
  it('sends JSON, strings, bytes with their content types, and custom headers', async () => {
    const calls = sequence('post', '/x', [ok()]);
    const { t } = transport({ headers: { 'X-Client': 'cdss' } });
    await t.request({ method: 'POST', path: 'x', body: { a: 1 } });
    await t.request({ method: 'POST', path: 'x', body: 'plain' });
    await t.request({
      method: 'POST',
      path: 'x',
      body: Buffer.from([1, 2, 3]),
      headers: { 'Content-Type': 'application/dicom' },
    });
    expect(calls[0]?.headers.get('content-type')).toBe('application/json');
    expect(await calls[0]?.json()).toEqual({ a: 1 });
    expect(calls[0]?.headers.get('x-client')).toBe('cdss');
    expect(calls[1]?.headers.get('content-type')).toContain('text/plain');
    expect(await calls[1]?.text()).toBe('plain');
    expect(calls[2]?.headers.get('content-type')).toBe('application/dicom');
    expect([...new Uint8Array(await calls[2]!.arrayBuffer())]).toEqual([1, 2, 3]);
  });

  it('returns text, arraybuffer and undefined for an empty JSON body', async () => {
    server.use(
      http.get(`${BASE}/text`, () => MswResponse.text('hello')),
      http.get(`${BASE}/bin`, () => MswResponse.arrayBuffer(new Uint8Array([7, 8]).buffer)),
      http.delete(`${BASE}/empty`, () => new Response(null, { status: 204 })),
    );
    const { t } = transport();
    expect((await t.request<string>({ method: 'GET', path: 'text', responseType: 'text' })).data).toBe('hello');
    const bin = await t.request<Buffer>({ method: 'GET', path: 'bin', responseType: 'arraybuffer' });
    expect(Buffer.isBuffer(bin.data) && [...bin.data]).toEqual([7, 8]);
    const empty = await t.request({ method: 'DELETE', path: 'empty' });
    expect(empty.status).toBe(204);
    expect(empty.data).toBeUndefined();
  });

  it('validates the response with the schema: a mismatch is a ValidationError naming the fields', async () => {
    sequence('get', '/Patient/1', [ok({ id: 1, name: 'not-an-array' })]);
    const { t } = transport();
    const schema = z.object({ id: z.string(), name: z.array(z.string()) });
    const error = (await t
      .request({ method: 'GET', path: 'Patient/1', schema })
      .catch((e: unknown) => e)) as ValidationError;
    expect(ValidationError.isInstance(error)).toBe(true);
    expect(error.fields.sort()).toEqual(['id', 'name']);
    expect(error.message).toContain('GET http://api.test/fhir/Patient/1');
    expect(error.issues.find((i) => i.path === 'id')).toMatchObject({ expected: 'string', received: 'number' });
  });

  it('returns schema-parsed data on a match', async () => {
    sequence('get', '/Patient/1', [ok({ id: '1', extra: true })]);
    const { t } = transport();
    const res = await t.request({ method: 'GET', path: 'Patient/1', schema: z.object({ id: z.string() }) });
    expect(res.data).toEqual({ id: '1' });
  });

  it('rejects a 2xx body that is not JSON with a ValidationError, and is not retried', async () => {
    const calls = sequence('get', '/x', [() => new Response('<html>', { headers: { 'content-type': 'text/html' } })]);
    const { t } = transport();
    await expect(t.request({ method: 'GET', path: 'x' })).rejects.toThrow(/not valid JSON|Invalid response/);
    expect(calls).toHaveLength(1);
  });

  it('throws HttpError with method, url, status, body and headers for a non-2xx answer, unless accepted', async () => {
    sequence('get', '/Patient/404', [
      () => MswResponse.json({ resourceType: 'OperationOutcome' }, { status: 404, headers: { 'x-request-id': 'r1' } }),
    ]);
    const { t } = transport();
    const error = (await t.request({ method: 'GET', path: 'Patient/404' }).catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      method: 'GET',
      url: `${BASE}/Patient/404`,
      status: 404,
      statusText: 'Not Found',
      retryable: false,
    });
    expect(error.responseBody).toEqual({ resourceType: 'OperationOutcome' });
    expect(error.responseHeaders['x-request-id']).toBe('r1');
    expect(error.message).toBe(`GET ${BASE}/Patient/404: 404 Not Found`);
    const accepted = await t.request({ method: 'GET', path: 'Patient/404', acceptStatus: (s) => s === 404 });
    expect(accepted.status).toBe(404);
    expect(accepted.data).toEqual({ resourceType: 'OperationOutcome' });
  });

  it('decodes a text error body, and the error body of a stream request', async () => {
    server.use(http.get(`${BASE}/t`, () => new Response('plain failure', { status: 400 })));
    const { t } = transport();
    const e1 = (await t.request({ method: 'GET', path: 't' }).catch((e: unknown) => e)) as HttpError;
    expect(e1.responseBody).toBe('plain failure');
    const e2 = (await t
      .request({ method: 'GET', path: 't', responseType: 'stream' })
      .catch((e: unknown) => e)) as HttpError;
    expect(e2.responseBody).toBe('plain failure');
  });
});

describe('HttpTransport retries', () => {
  it('honours Retry-After in seconds', async () => {
    const calls = sequence('get', '/x', [status(503, { 'retry-after': '3' }), ok()]);
    const { t, clock } = transport();
    const res = await t.request({ method: 'GET', path: 'x' });
    expect(res.status).toBe(200);
    expect(calls).toHaveLength(2);
    expect(clock.sleeps).toEqual([3000]);
  });

  it('honours Retry-After as an HTTP-date', async () => {
    const { t, clock } = transport();
    const when = new Date(clock.now() + 7000).toUTCString();
    sequence('get', '/x', [status(429, { 'retry-after': when }), ok()]);
    await t.request({ method: 'GET', path: 'x' });
    expect(clock.sleeps).toEqual([7000]);
  });

  it('does not wait for a Retry-After beyond maxRetryAfterMs: the 429 is thrown', async () => {
    const calls = sequence('get', '/x', [status(429, { 'retry-after': '3600' }), ok()]);
    const { t, clock } = transport();
    const error = (await t.request({ method: 'GET', path: 'x' }).catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(429);
    expect(error.responseHeaders['retry-after']).toBe('3600');
    expect(calls).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('backs off exponentially with full jitter when there is no Retry-After', async () => {
    sequence('get', '/x', [status(500), status(502), ok()]);
    const { t, clock } = transport({ retry: { baseDelayMs: 100, random: () => 0.5 } });
    await t.request({ method: 'GET', path: 'x' });
    expect(clock.sleeps).toEqual([50, 100]);
  });

  it('collects every attempt in RetryError when retries are exhausted', async () => {
    const calls = sequence('get', '/x', [status(500), status(502), status(503)]);
    const { t } = transport();
    const error = (await t.request({ method: 'GET', path: 'x' }).catch((e: unknown) => e)) as RetryError;
    expect(RetryError.isInstance(error)).toBe(true);
    expect(calls).toHaveLength(3);
    expect(error.errors.map((e) => (e as HttpError).status)).toEqual([500, 502, 503]);
    expect((error.lastError as HttpError).status).toBe(503);
  });

  it('after a retry, a transient failure the policy gives up on is a RetryError; a permanent one is thrown as is', async () => {
    sequence('get', '/a', [status(503), status(429, { 'retry-after': '3600' })]);
    const { t } = transport();
    const gaveUp = (await t.request({ method: 'GET', path: 'a' }).catch((e: unknown) => e)) as RetryError;
    expect(RetryError.isInstance(gaveUp)).toBe(true);
    expect(gaveUp.errors.map((e) => (e as HttpError).status)).toEqual([503, 429]);
    sequence('get', '/b', [status(503), status(404)]);
    const permanent = (await t.request({ method: 'GET', path: 'b' }).catch((e: unknown) => e)) as HttpError;
    expect(HttpError.isInstance(permanent) && permanent.status).toBe(404);
  });

  it('does not retry a POST without an idempotency key', async () => {
    const calls = sequence('post', '/Observation', [status(503), ok()]);
    const { t, clock } = transport();
    const error = (await t
      .request({ method: 'POST', path: 'Observation', body: { a: 1 } })
      .catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(503);
    expect(calls).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('retries a POST (and PATCH) that carries an idempotency key, sending it as Idempotency-Key', async () => {
    const calls = sequence('post', '/Observation', [status(503), ok({ id: 'o1' })]);
    const { t } = transport();
    const res = await t.request({ method: 'POST', path: 'Observation', body: { a: 1 }, idempotencyKey: 'key-1' });
    expect(res.data).toEqual({ id: 'o1' });
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.headers.get('idempotency-key'))).toEqual(['key-1', 'key-1']);
    const patches = sequence('patch', '/Observation/o1', [status(502), ok()]);
    await t.request({ method: 'PATCH', path: 'Observation/o1', body: [], idempotencyKey: 'key-2' });
    expect(patches).toHaveLength(2);
  });

  it('does not retry 4xx answers other than 408/425/429', async () => {
    const calls = sequence('get', '/x', [status(400), ok()]);
    const { t } = transport();
    await expect(t.request({ method: 'GET', path: 'x' })).rejects.toThrow(HttpError);
    expect(calls).toHaveLength(1);
  });

  it('retries 408 and 425; retry: false per request or per transport disables retries', async () => {
    const calls = sequence('get', '/x', [status(408), status(425), ok()]);
    const { t } = transport();
    await t.request({ method: 'GET', path: 'x' });
    expect(calls).toHaveLength(3);
    const none = sequence('get', '/y', [status(503), ok()]);
    await expect(t.request({ method: 'GET', path: 'y', retry: false })).rejects.toThrow(HttpError);
    expect(none).toHaveLength(1);
    const t2 = new HttpTransport({ baseUrl: BASE, retry: false });
    const none2 = sequence('get', '/z', [status(503), ok()]);
    await expect(t2.request({ method: 'GET', path: 'z' })).rejects.toThrow(HttpError);
    expect(none2).toHaveLength(1);
  });

  it('takes per-request retry options and a custom RetryPolicy', async () => {
    const calls = sequence('get', '/x', [status(500)]);
    const { t } = transport();
    await expect(t.request({ method: 'GET', path: 'x', retry: { maxRetries: 4, baseDelayMs: 0 } })).rejects.toThrow(
      RetryError,
    );
    expect(calls).toHaveLength(5);
    const custom = sequence('get', '/y', [status(500), ok()]);
    const clock = createTestClock();
    const t2 = new HttpTransport({
      baseUrl: BASE,
      clock,
      retry: createRetryPolicy({ maxRetries: 1, baseDelayMs: 10, random: () => 1 }),
    });
    await t2.request({ method: 'GET', path: 'y' });
    expect(custom).toHaveLength(2);
    expect(clock.sleeps).toEqual([10]);
  });

  it('retries network errors: no response gives an HttpError without status and a sanitised cause', async () => {
    const calls: number[] = [];
    server.use(
      http.get(`${BASE}/net`, () => {
        calls.push(1);
        return MswResponse.error();
      }),
    );
    const { t } = transport({ auth: bearerAuth('tok-abc') });
    const error = (await t.request({ method: 'GET', path: 'net' }).catch((e: unknown) => e)) as RetryError;
    expect(RetryError.isInstance(error)).toBe(true);
    expect(calls).toHaveLength(3);
    const first = error.errors[0] as HttpError;
    expect(first.status).toBeUndefined();
    expect(first.retryable).toBe(true);
    expect(JSON.stringify(first.cause, Object.getOwnPropertyNames(first.cause))).not.toContain('tok-abc');
    expect(Object.keys(first.cause as object)).not.toContain('config');
  });

  it('logs each retry without bodies, headers or query values', async () => {
    const lines: { level: string; obj: unknown; msg: string | undefined }[] = [];
    const log = (level: string) => (obj: object | string, msg?: string) => lines.push({ level, obj, msg });
    const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
    sequence('get', '/Patient', [status(503), ok()]);
    const { t } = transport({ logger, auth: bearerAuth('tok-abc') });
    await t.request({ method: 'GET', path: 'Patient', query: { name: 'Alice Smith' } });
    const warn = lines.find((l) => l.level === 'warn');
    expect(warn?.obj).toMatchObject({ method: 'GET', url: `${BASE}/Patient?name=*`, attempt: 1, status: 503 });
    expect(JSON.stringify(lines)).not.toMatch(/Alice|tok-abc/);
    expect(lines.filter((l) => l.level === 'debug')).toHaveLength(2);
  });

  it('masks identifier path segments (uuids, numeric ids, DICOM UIDs, Orthanc ids) in logs', async () => {
    const lines: { obj: unknown }[] = [];
    const log = (obj: object | string) => lines.push({ obj });
    const logger: Logger = { debug: log, info: log, warn: log, error: log };
    const uuid = '9fe235d6-e674-5663-a745-ffb447145825';
    sequence('get', `/patient/${uuid}/studies/1.2.840.113619.2.5/v1/42`, [status(503), ok()]);
    await transport({ logger }).t.request({ method: 'GET', path: `patient/${uuid}/studies/1.2.840.113619.2.5/v1/42` });
    const urls = lines.map((l) => (l.obj as { url?: string }).url).filter(Boolean);
    expect(urls[0]).toBe(`${BASE}/patient/:id/studies/:id/v1/:id`);
    expect(JSON.stringify(lines)).not.toMatch(/9fe235d6|113619/);
  });
});

describe('HttpTransport auth', () => {
  it('sends bearer and basic credentials', async () => {
    const calls = sequence('get', '/x', [ok()]);
    await new HttpTransport({ baseUrl: BASE, auth: bearerAuth('abc') }).request({ method: 'GET', path: 'x' });
    await new HttpTransport({ baseUrl: BASE, auth: bearerAuth(() => Promise.resolve('def')) }).request({
      method: 'GET',
      path: 'x',
    });
    await new HttpTransport({ baseUrl: BASE, auth: basicAuth('u', 'p') }).request({ method: 'GET', path: 'x' });
    expect(calls.map((c) => c.headers.get('authorization'))).toEqual([
      'Bearer abc',
      'Bearer def',
      `Basic ${btoa('u:p')}`,
    ]);
  });

  it('ten concurrent calls hitting 401 cause exactly one token refresh', async () => {
    let fetches = 0;
    const provider = {
      fetchToken: async () => {
        fetches++;
        await new Promise((r) => setTimeout(r, 5));
        return { accessToken: `token-${fetches}` };
      },
    };
    const seen: string[] = [];
    server.use(
      http.get(`${BASE}/Patient/:id`, ({ request, params }) => {
        const auth = request.headers.get('authorization') ?? '';
        seen.push(auth);
        if (auth !== 'Bearer token-2') return new MswResponse(null, { status: 401 });
        return MswResponse.json({ id: params['id'] });
      }),
    );
    const { t } = transport({ auth: oauth2Auth(provider) });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => t.request<{ id: string }>({ method: 'GET', path: `Patient/${i}` })),
    );
    expect(results.map((r) => r.data.id)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    // one initial fetch + exactly one refresh, shared by the ten callers
    expect(fetches).toBe(2);
    expect(seen.filter((s) => s === 'Bearer token-1')).toHaveLength(10);
    expect(seen.filter((s) => s === 'Bearer token-2')).toHaveLength(10);
  });

  it('retries a 401 once only: a second 401 is thrown', async () => {
    let fetches = 0;
    const calls = sequence('get', '/x', [() => new MswResponse(null, { status: 401 })]);
    const { t } = transport({
      auth: oauth2Auth({ fetchToken: () => Promise.resolve({ accessToken: `t${++fetches}` }) }),
    });
    const error = (await t.request({ method: 'GET', path: 'x' }).catch((e: unknown) => e)) as HttpError;
    expect(error.status).toBe(401);
    expect(calls).toHaveLength(2);
    expect(fetches).toBe(2);
  });

  it('a 401 without onUnauthorized, or one refused by it, is thrown at once', async () => {
    const calls = sequence('get', '/x', [() => new MswResponse(null, { status: 401 })]);
    await expect(
      new HttpTransport({ baseUrl: BASE, auth: bearerAuth('x') }).request({ method: 'GET', path: 'x' }),
    ).rejects.toThrow(/401/);
    const refusing = { authorize: () => Promise.resolve(), onUnauthorized: () => Promise.resolve(false) };
    await expect(
      new HttpTransport({ baseUrl: BASE, auth: refusing }).request({ method: 'GET', path: 'x' }),
    ).rejects.toThrow(/401/);
    expect(calls).toHaveLength(2);
  });
});

describe('HttpTransport hooks and encodings', () => {
  it('runs onRequest (which may add headers), onResponse and onError for every attempt', async () => {
    const calls = sequence('get', '/x', [status(503), ok()]);
    const events: string[] = [];
    const { t } = transport({
      hooks: {
        onRequest: (ctx: RequestContext) => {
          events.push(`req ${ctx.attempt}`);
          ctx.headers['x-trace'] = `trace-${ctx.attempt}`;
        },
        onResponse: (ctx) => {
          events.push(`res ${ctx.status}`);
        },
        onError: (ctx) => {
          events.push(`err ${(ctx.error as HttpError).status}`);
        },
      },
    });
    await t.request({ method: 'GET', path: 'x' });
    expect(events).toEqual(['req 1', 'res 503', 'err 503', 'req 2', 'res 200']);
    expect(calls.map((c) => c.headers.get('x-trace'))).toEqual(['trace-1', 'trace-2']);
  });

  it('a throwing hook fails the request', async () => {
    sequence('get', '/x', [ok()]);
    const { t } = transport({ hooks: { onRequest: () => Promise.reject(new Error('blocked')) } });
    await expect(t.request({ method: 'GET', path: 'x' })).rejects.toThrow('blocked');
  });

  it('sends Accept-Encoding: identity when asked', async () => {
    const calls = sequence('get', '/x', [ok()]);
    const { t } = transport();
    await t.request({ method: 'GET', path: 'x', acceptEncoding: 'identity', decompress: false });
    expect(calls[0]?.headers.get('accept-encoding')).toBe('identity');
  });
});
