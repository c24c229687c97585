/**
 * The lean request path answers exactly what the plain one did: helmet's headers precomputed, CORS only for
 * requests with an origin, request ids, cached JSON text.
 */
import express, { type RequestHandler } from 'express';
import helmet from 'helmet';
import cors from 'cors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeRecords, memoryCache, startHarness, type Harness } from '../test-support.js';
import { patientRoutes } from '../domain/patients.js';
import { corsUnlessSameOrigin, precomputedHeaders, requestId } from './security.js';

async function headersOf(...middleware: RequestHandler[]): Promise<{ get(origin?: string): Promise<Headers> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(...middleware);
  app.get('/x', (_req, res) => void res.json({ ok: true }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((ok) => server.once('listening', ok));
  const { port } = server.address() as { port: number };
  afterAll(() => new Promise((ok) => server.close(ok)));
  return {
    get: async (origin) => (await fetch(`http://127.0.0.1:${port}/x`, origin ? { headers: { origin } } : {})).headers,
  };
}

const sorted = (h: Headers, drop: string[] = []) =>
  [...h.entries()].filter(([name]) => !['date', 'etag', ...drop].includes(name)).sort();

describe('precomputed security headers', () => {
  it('sets what helmet sets, byte for byte', async () => {
    const options = { contentSecurityPolicy: { directives: { 'script-src': ["'self'", "'unsafe-inline'"] } } };
    const plain = await headersOf(helmet(options));
    const precomputed = await headersOf(precomputedHeaders(helmet(options)));
    expect(sorted(await precomputed.get())).toEqual(sorted(await plain.get()));
    expect((await precomputed.get()).get('content-security-policy')).toContain("script-src 'self' 'unsafe-inline'");
  });

  it('refuses a middleware that does not answer at once', () => {
    expect(() => precomputedHeaders((_req, _res, next) => void setTimeout(next, 1))).toThrow(/precomputed/);
  });
});

describe('CORS only for requests with an origin', () => {
  it('answers cross-origin requests as the cors package does, and same-origin ones with Vary only', async () => {
    const policy = () =>
      cors({ origin: (o, cb) => cb(null, !o || o === 'https://ok.test'), exposedHeaders: ['X-Request-Id'] });
    const plain = await headersOf(policy());
    const lean = await headersOf(corsUnlessSameOrigin(policy()));
    for (const origin of ['https://ok.test', 'https://evil.test'])
      expect(sorted(await lean.get(origin))).toEqual(sorted(await plain.get(origin)));
    const same = await lean.get();
    expect(same.get('vary')).toBe('Origin');
    expect(same.get('access-control-allow-origin')).toBeNull();
  });
});

describe('request ids', () => {
  it('keeps a sane incoming id and otherwise makes a unique one', async () => {
    const server = await headersOf(requestId);
    const ids = await Promise.all(Array.from({ length: 50 }, async () => (await server.get()).get('x-request-id')));
    expect(new Set(ids).size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[\w-]{12}-[0-9a-z]+$/);
  });
});

describe('cached answers', () => {
  let h: Harness;
  const records = fakeRecords();
  const id = '4b0d7c1e-2f3a-4e5b-8c6d-7e8f9a0b1c2d';
  records.patients.set(id, {
    id,
    givenName: 'Zoë',
    familyName: 'Ünal "quoted"',
    birthDate: '1970-01-02',
    sex: 'female',
    address: { city: 'Köln' },
  });
  beforeAll(async () => {
    h = await startHarness(({ auditor, bus, fhir }) => [
      ...patientRoutes({ records, cache: memoryCache(), fhir, bus, auditor }),
    ]);
  });
  afterAll(async () => h.close());

  it('keep the JSON text of a cached value, and only of a cached value', async () => {
    const cache = memoryCache();
    const load = async () => ({ name: 'Zoë "x"', n: [1, 2] });
    const loaded = await cache.read('k', load);
    expect(loaded.json).toBeUndefined();
    const hit = await cache.read('k', load);
    expect(hit.json).toBe(JSON.stringify(loaded.value));
    expect((await cache.read('k', load)).json).toBe(hit.json);
  });

  it('answer a cache hit with the same bytes as the first, serialised read', async () => {
    const token = await h.token('demo-nurse');
    const read = async () =>
      (await fetch(`${h.baseUrl}/api/patients/${id}`, { headers: { authorization: `Bearer ${token}` } })).text();
    const first = await read(); // loaded from the EMR, serialised whole
    const second = await read(); // from the cache, around its kept text
    const third = await read();
    expect(second).toBe(first);
    expect(third).toBe(first);
    expect(JSON.parse(first)).toEqual({ data: records.patients.get(id), stale: false });
  });
});
