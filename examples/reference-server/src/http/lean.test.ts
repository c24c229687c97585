/**
 * The lean request path answers exactly what the plain one did: helmet's headers precomputed, CORS only for
 * requests with an origin, request ids, cached JSON text.
 */
import { Agent, get } from 'node:http';
import express, { type RequestHandler } from 'express';
import helmet from 'helmet';
import cors from 'cors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeRecords, memoryCache, startHarness, type Harness } from '../test-support.js';
import { patientRoutes } from '../domain/patients.js';
import { rateLimit as expressRateLimit, type Store } from 'express-rate-limit';
import { createMetrics } from '../metrics.js';
import {
  corsUnlessSameOrigin,
  httpMetrics,
  identify,
  precomputedHeaders,
  rateLimit,
  requestId,
  sequence,
  whenBody,
} from './security.js';
import type { Principal, TokenVerifier } from '../auth/tokens.js';
import { freePort } from '@cdss/core/testing';

async function responder(
  ...middleware: RequestHandler[]
): Promise<{ get(origin?: string, headers?: Record<string, string>): Promise<Response> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(...middleware);
  app.get('/x', (_req, res) => void res.json({ ok: true }));
  const server = app.listen(await freePort(), '127.0.0.1');
  await new Promise((ok) => server.once('listening', ok));
  const { port } = server.address() as { port: number };
  afterAll(() => new Promise((ok) => server.close(ok)));
  return {
    get: (origin, headers = {}) =>
      fetch(`http://127.0.0.1:${port}/x`, { headers: { ...headers, ...(origin ? { origin } : {}) } }),
  };
}

async function headersOf(...middleware: RequestHandler[]): Promise<{ get(origin?: string): Promise<Headers> }> {
  const server = await responder(...middleware);
  return { get: async (origin) => (await server.get(origin)).headers };
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

describe('rate limits in one pass', () => {
  /** Sets the principal from a test header, as the token middleware would. */
  const principalFrom: RequestHandler = (req, _res, next) => {
    const user = req.headers['x-user'];
    if (typeof user === 'string') req.principal = { id: user, name: user, roles: ['nurse'] };
    next();
  };
  const twoLimiters = (limit: number): RequestHandler[] => [
    expressRateLimit({ windowMs: 60_000, limit, standardHeaders: 'draft-7', legacyHeaders: false }),
    expressRateLimit({
      windowMs: 60_000,
      limit,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      skip: (req) => !req.principal,
      keyGenerator: (req) => `user:${req.principal?.id ?? ''}`,
    }),
  ];
  const sequence = async (server: { get(origin?: string, headers?: Record<string, string>): Promise<Response> }) => {
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      for (const headers of [{}, { 'x-user': 'u1' }, { 'x-user': 'u2' }] as Array<Record<string, string>>) {
        const r = await server.get(undefined, headers);
        await r.arrayBuffer();
        // reset= may differ by a second between the two; the rest must be equal.
        seen.push(
          `${r.status} ${r.headers.get('ratelimit-policy')} ${r.headers.get('ratelimit')?.replace(/reset=\d+/, 'reset=…')} ${r.headers.get('retry-after') !== null}`,
        );
      }
    }
    return seen;
  };

  it('refuses what two express-rate-limit instances refused, and reports the tighter of the two limits', async () => {
    const plain = await responder(principalFrom, ...twoLimiters(8));
    const lean = await responder(principalFrom, rateLimit({ perMinute: 8 }));
    const status = (line: string) => line.split(' ')[0];
    const before = await sequence(plain);
    const after = await sequence(lean);
    expect(after.map(status)).toEqual(before.map(status));
    // One address: request n (1-based) is its nth; a user's kth request is also counted per user. The headers give
    // the tighter limit (express-rate-limit's second instance overwrote the first's, reporting the user's alone).
    const expected = Array.from({ length: 15 }, (_, n) => {
      const hits = n + 1;
      return `${hits > 8 ? 429 : 200} 8;w=60 limit=8, remaining=${Math.max(8 - hits, 0)}, reset=… ${hits > 8}`;
    });
    expect(after).toEqual(expected);
  });

  it('counts each forwarded client address of one keep-alive connection apart (trusted proxy)', async () => {
    const app = express();
    app.set('trust proxy', 'loopback');
    app.use(rateLimit({ perMinute: 1 }));
    app.get('/x', (_req, res) => void res.json({ ok: true }));
    const server = app.listen(await freePort(), '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    afterAll(() => new Promise((ok) => server.close(ok)));
    const { port } = server.address() as { port: number };
    const sockets = new Set<unknown>();
    server.on('connection', (socket) => sockets.add(socket));
    // One keep-alive connection for every request.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    afterAll(() => agent.destroy());
    const status = (forwarded?: string) =>
      new Promise<number>((resolve, reject) => {
        const headers = forwarded ? { 'x-forwarded-for': forwarded } : {};
        get({ host: '127.0.0.1', port, path: '/x', agent, headers }, (response) => {
          response.resume().on('end', () => resolve(response.statusCode ?? 0));
        }).on('error', reject);
      });
    expect([await status('203.0.113.1'), await status('203.0.113.1')]).toEqual([200, 429]);
    expect([await status('203.0.113.2'), await status('2001:db8:1:1::1'), await status('2001:db8:1:2::9')]).toEqual(
      [200, 200, 429], // one IPv6 /56
    );
    expect([await status(), await status()]).toEqual([200, 429]);
    expect(await status('203.0.113.1')).toBe(429);
    expect(sockets.size).toBe(1);
  });

  it('counts users in a shared store, and lets requests through when that store fails', async () => {
    const hits = new Map<string, number>();
    let down = false;
    const store: Store = {
      async increment(key) {
        if (down) throw new Error('store down');
        hits.set(key, (hits.get(key) ?? 0) + 1);
        return { totalHits: hits.get(key)!, resetTime: new Date(Date.now() + 30_000) };
      },
      async decrement() {},
      async resetKey() {},
    };
    const server = await responder(principalFrom, rateLimit({ perMinute: 2, perIp: false, userStore: store }));
    const status = async (user?: string) => (await server.get(undefined, user ? { 'x-user': user } : {})).status;
    expect([await status('a'), await status('a'), await status('a'), await status('b')]).toEqual([200, 200, 429, 200]);
    expect(await status()).toBe(200); // no user, no per-IP limit here
    down = true;
    expect(await status('a')).toBe(200);
    expect(hits.get('user:a')).toBe(3);
  });
});

describe('bearer tokens', () => {
  it('take a remembered token’s caller without verifying it, and verify the others', async () => {
    const nurse: Principal = { id: 'n-1', name: 'Nina', roles: ['nurse'] };
    const verified: string[] = [];
    const verifier: TokenVerifier = {
      remembered: (token) => (token === 'known' ? nurse : undefined),
      async verify(token) {
        verified.push(token);
        if (token === 'fresh') return { ...nurse, id: 'n-2' };
        throw new Error('bad');
      },
    };
    const app = express();
    app.use(identify(verifier));
    app.get('/x', (req, res) => void res.json({ id: req.principal?.id ?? null, error: req.authError ?? null }));
    const server = app.listen(await freePort(), '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    afterAll(() => new Promise((ok) => server.close(ok)));
    const { port } = server.address() as { port: number };
    const who = async (token: string) =>
      (await fetch(`http://127.0.0.1:${port}/x`, { headers: { authorization: `Bearer ${token}` } })).json();
    expect(await who('known')).toEqual({ id: 'n-1', error: null });
    expect(await who('fresh')).toEqual({ id: 'n-2', error: null });
    expect(await who('forged')).toEqual({ id: null, error: 'Invalid or expired token' });
    expect(verified).toEqual(['fresh', 'forged']);
  });
});

describe('middleware in sequence', () => {
  it('runs each in order as one layer, and hands errors (passed, thrown, rejected) to the error handler', async () => {
    const app = express();
    const mark =
      (name: string): RequestHandler =>
      (req, _res, next) => {
        (req as { seen?: string[] }).seen = [...((req as { seen?: string[] }).seen ?? []), name];
        const fail = req.query['fail'];
        if (fail === `${name}-next`) return next(new Error(`${name} passed`));
        if (fail === `${name}-throw`) throw new Error(`${name} threw`);
        if (fail === `${name}-reject`) return Promise.reject(new Error(`${name} rejected`)) as never;
        if (name === 'b')
          setImmediate(next); // asynchronous next, as the token check's
        else next();
      };
    app.use(sequence(mark('a'), mark('b'), mark('c')));
    app.use(whenBody(express.json()));
    app.all('/x', (req, res) => void res.json({ seen: (req as { seen?: string[] }).seen, body: req.body ?? null }));
    app.use(
      ((error, _req, res, _next) =>
        void res.status(500).json({ error: (error as Error).message })) as express.ErrorRequestHandler,
    );
    const server = app.listen(await freePort(), '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    afterAll(() => new Promise((ok) => server.close(ok)));
    const { port } = server.address() as { port: number };
    const call = async (query = '', init: RequestInit = {}) =>
      (await fetch(`http://127.0.0.1:${port}/x${query}`, init)).json();
    expect(await call()).toEqual({ seen: ['a', 'b', 'c'], body: null });
    expect(await call('?fail=a-next')).toEqual({ error: 'a passed' });
    expect(await call('?fail=c-throw')).toEqual({ error: 'c threw' });
    expect(await call('?fail=b-reject')).toEqual({ error: 'b rejected' });
    // Bodies still reach the parser, with a length or chunked.
    const json = { method: 'POST', headers: { 'content-type': 'application/json' } };
    expect(await call('', { ...json, body: '{"n":1}' })).toEqual({ seen: ['a', 'b', 'c'], body: { n: 1 } });
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"n":2}'));
        c.close();
      },
    });
    expect(await call('', { ...json, body: chunked, duplex: 'half' } as RequestInit)).toMatchObject({ body: { n: 2 } });
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

  it('answer a cache hit with the headers of a serialised answer, and conditional and HEAD requests as Express does', async () => {
    const token = await h.token('demo-nurse');
    const other = '5c1e8d2f-3a4b-4f6c-9d7e-8f9a0b1c2d3e';
    records.patients.set(other, { ...records.patients.get(id)!, id: other, givenName: 'Åsa' });
    const read = (init: RequestInit = {}) =>
      fetch(`${h.baseUrl}/api/patients/${other}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
      });
    const pick = (r: Response) => ['content-type', 'content-length', 'etag'].map((n) => r.headers.get(n));
    const first = await read(); // serialised whole, sent by res.send as text
    const firstBody = await first.text();
    for (let i = 0; i < 2; i++) {
      const hit = await read(); // prepared bytes
      expect(pick(hit)).toEqual(pick(first));
      expect(await hit.text()).toBe(firstBody);
    }
    expect(pick(first)[0]).toBe('application/json; charset=utf-8');
    expect(pick(first)[2]).toMatch(/^W\/"[0-9a-f]+-[\w+/]{27}"$/);
    const etag = first.headers.get('etag')!;
    // fetch adds `Cache-Control: no-cache` to a conditional request unless it has one (which would defeat it).
    const notModified = await read({ headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe('');
    const changed = await read({ headers: { 'if-none-match': 'W/"0-other"', 'cache-control': 'max-age=0' } });
    expect(changed.status).toBe(200);
    expect(await changed.text()).toBe(firstBody);
    const head = await read({ method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(pick(head)).toEqual(pick(first));
    expect(await head.text()).toBe('');
  });
});

describe('request metrics', () => {
  it('label each request by method, route template (with its mount path) and status', async () => {
    const metrics = createMetrics();
    const app = express();
    app.use(httpMetrics(metrics));
    app.get('/items/:id', (req, res) => void res.status(req.params.id === 'gone' ? 404 : 200).json({}));
    const mounted = express.Router();
    mounted.get('/thing', (_req, res) => void res.json({}));
    app.use('/a', mounted);
    app.use('/b', mounted);
    const server = app.listen(await freePort(), '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    const { port } = server.address() as { port: number };
    try {
      for (const path of ['/items/1', '/items/2', '/items/gone', '/a/thing', '/b/thing', '/b/thing', '/nowhere'])
        await (await fetch(`http://127.0.0.1:${port}${path}`)).arrayBuffer();
      await new Promise((ok) => setImmediate(ok));
      const { values } = await metrics.httpDuration.get();
      const counts = Object.fromEntries(
        values
          .filter((v) => v.metricName === 'cdss_http_request_duration_seconds_count')
          .map((v) => [`${v.labels.method} ${v.labels.route} ${v.labels.status}`, v.value]),
      );
      expect(counts).toEqual({
        'GET /items/:id 200': 2,
        'GET /items/:id 404': 1,
        'GET /a/thing 200': 1,
        'GET /b/thing 200': 2,
        'GET unmatched 404': 1,
      });
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });
});
