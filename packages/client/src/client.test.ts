import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { createCdssClient, type CdssClient } from './client.js';
import { CdssApiError, duplicateCandidates } from './errors.js';

const BASE = 'http://cdss.test';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
}

/** The request's headers as a plain object (lower-case names). */
function headersOf(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[name] = value));
  return out;
}

/** Answers every request with `answer` and records what the client sent. */
function record(answer: () => Response): Seen[] {
  const seen: Seen[] = [];
  server.use(
    http.all(`${BASE}/*`, async ({ request }) => {
      const url = new URL(request.url);
      const text = await request.text();
      seen.push({
        method: request.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: headersOf(request.headers),
        body: text ? (JSON.parse(text) as unknown) : undefined,
      });
      return answer();
    }),
  );
  return seen;
}

const client = (options: Partial<Parameters<typeof createCdssClient>[0]> = {}): CdssClient =>
  createCdssClient({ baseUrl: `${BASE}/`, getToken: () => 'tok-1', retry: { baseDelayMs: 1 }, ...options });

const PATIENT_INPUT = { givenName: 'Ada', familyName: 'Lovelace', birthDate: '1990-01-01', sex: 'female' as const };

/** Every method of the client with the request it must send (the server's routes: examples/reference-server). */
const CALLS: Array<[string, (c: CdssClient) => Promise<unknown>, Omit<Seen, 'headers'>]> = [
  [
    'sandbox.users',
    (c) => c.sandbox.users(),
    { method: 'GET', path: '/api/sandbox/users', query: {}, body: undefined },
  ],
  [
    'sandbox.token',
    (c) => c.sandbox.token('u-1'),
    { method: 'POST', path: '/api/sandbox/token', query: {}, body: { userId: 'u-1' } },
  ],
  [
    'patients.search',
    (c) => c.patients.search({ q: 'ada', limit: 5, cursor: 'c1' }),
    { method: 'GET', path: '/api/patients', query: { q: 'ada', limit: '5', cursor: 'c1' }, body: undefined },
  ],
  [
    'patients.get',
    (c) => c.patients.get('p/1'),
    { method: 'GET', path: '/api/patients/p%2F1', query: {}, body: undefined },
  ],
  [
    'patients.create',
    (c) => c.patients.create(PATIENT_INPUT, { confirmDuplicate: true }),
    { method: 'POST', path: '/api/patients', query: { confirm: 'duplicate' }, body: PATIENT_INPUT },
  ],
  [
    'patients.update',
    (c) => c.patients.update('p1', PATIENT_INPUT),
    { method: 'PUT', path: '/api/patients/p1', query: {}, body: PATIENT_INPUT },
  ],
  ...(['encounters', 'problems', 'allergies', 'medications', 'vitals', 'studies', 'assessment'] as const).map(
    (what): (typeof CALLS)[number] => [
      `patients.${what}`,
      (c) => c.patients[what]('p1'),
      { method: 'GET', path: `/api/patients/p1/${what}`, query: {}, body: undefined },
    ],
  ),
  [
    'studies.get',
    (c) => c.studies.get('1.2.3'),
    { method: 'GET', path: '/api/studies/1.2.3', query: {}, body: undefined },
  ],
  [
    'analyses.request',
    (c) => c.analyses.request('1.2.3', { priority: 'urgent' } as never),
    { method: 'POST', path: '/api/studies/1.2.3/analyses', query: {}, body: { priority: 'urgent' } },
  ],
  [
    'analyses.get',
    (c) => c.analyses.get('a1'),
    { method: 'GET', path: '/api/analyses/a1', query: {}, body: undefined },
  ],
  [
    'analyses.list',
    (c) => c.analyses.list({ patient: 'p1', review: 'pending' }),
    { method: 'GET', path: '/api/analyses', query: { patient: 'p1', review: 'pending' }, body: undefined },
  ],
  [
    'analyses.cancel',
    (c) => c.analyses.cancel('a1'),
    { method: 'POST', path: '/api/analyses/a1/cancel', query: {}, body: undefined },
  ],
  [
    'analyses.review',
    (c) => c.analyses.review('a1', { decision: 'reject', comment: 'motion' }),
    { method: 'POST', path: '/api/analyses/a1/review', query: {}, body: { decision: 'reject', comment: 'motion' } },
  ],
  [
    'analyses.report',
    (c) => c.analyses.report('a1'),
    { method: 'GET', path: '/api/analyses/a1/report', query: {}, body: undefined },
  ],
  [
    'audit.list',
    (c) => c.audit.list({ user: 'u1', outcome: 'denied', limit: 10 }),
    { method: 'GET', path: '/api/audit', query: { user: 'u1', outcome: 'denied', limit: '10' }, body: undefined },
  ],
];

describe('createCdssClient: every method', () => {
  it.each(CALLS)('%s sends its request with the token and checks the answer', async (_name, call, expected) => {
    // An answer of the wrong shape: the request is recorded, and the client refuses the answer.
    const seen = record(() => HttpResponse.json({ unexpected: true }));
    const error = await call(client()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CdssApiError);
    expect((error as CdssApiError).message).toMatch(/unexpected response shape/);
    expect(seen).toHaveLength(1);
    const { headers, ...request } = seen[0]!;
    expect(request).toEqual(expected);
    expect(headers['authorization']).toBe('Bearer tok-1');
    expect(headers['accept']).toBe('application/json');
    if (expected.body !== undefined) expect(headers['content-type']).toBe('application/json');
  });

  it('returns the parsed answer', async () => {
    record(() => HttpResponse.json([{ id: 'u1', name: 'Dr A', role: 'radiologist' }]));
    expect(await client().sandbox.users()).toEqual([{ id: 'u1', name: 'Dr A', role: 'radiologist' }]);
    record(() => HttpResponse.json({ items: [], nextCursor: 'n2' }));
    expect(await client().patients.search()).toEqual({ items: [], nextCursor: 'n2' });
    record(() => HttpResponse.json({ id: 'a1', status: 'queued' }, { status: 202 }));
    expect(await client().analyses.request('1.2.3', {} as never)).toEqual({ id: 'a1', status: 'queued' });
  });

  it('sends no authorization without a token, and an Idempotency-Key when given one', async () => {
    const seen = record(() => HttpResponse.json({ unexpected: true }));
    await client({ getToken: () => undefined })
      .patients.create(PATIENT_INPUT, { idempotencyKey: 'k-1' })
      .catch(() => undefined);
    expect(seen[0]!.headers['authorization']).toBeUndefined();
    expect(seen[0]!.headers['idempotency-key']).toBe('k-1');
  });
});

describe('createCdssClient: errors', () => {
  it('turns an OperationOutcome into a CdssApiError with its issues', async () => {
    record(() =>
      HttpResponse.json(
        { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden', diagnostics: 'no role' }] },
        { status: 403 },
      ),
    );
    const error = (await client()
      .analyses.get('a1')
      .catch((e: unknown) => e)) as CdssApiError;
    expect(error).toBeInstanceOf(CdssApiError);
    expect(error.status).toBe(403);
    expect(error.message).toBe('GET /api/analyses/a1: 403 no role');
    expect(error.issues).toEqual([{ severity: 'error', code: 'forbidden', diagnostics: 'no role' }]);
  });

  it('keeps the candidates of a duplicate patient (409)', async () => {
    record(() =>
      HttpResponse.json(
        {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'duplicate', diagnostics: 'a patient with these details exists' }],
          contained: [{ resourceType: 'Patient', id: 'p9', name: [{ family: 'Lovelace', given: ['Ada'] }] }],
        },
        { status: 409 },
      ),
    );
    const error = await client()
      .patients.create(PATIENT_INPUT)
      .catch((e: unknown) => e);
    expect(duplicateCandidates(error)).toEqual([{ id: 'p9', givenName: 'Ada', familyName: 'Lovelace' }]);
  });

  it('reports an unreachable server as status 0', async () => {
    record(() => HttpResponse.error());
    const error = (await client({ retry: { retries: 0 } })
      .patients.get('p1')
      .catch((e: unknown) => e)) as CdssApiError;
    expect(error.status).toBe(0);
    expect(error.message).toBe('GET /api/patients/p1: the server could not be reached');
  });
});

describe('createCdssClient: retries', () => {
  const flaky = (failures: Response[], then: () => Response): Seen[] => {
    let n = 0;
    return record(() => (n < failures.length ? failures[n++]! : then()));
  };

  it('retries a GET on 503 and on a network failure, then answers', async () => {
    const seen = flaky([new HttpResponse(null, { status: 503 }), HttpResponse.error()], () =>
      HttpResponse.json({ items: [] }),
    );
    expect(await client().patients.search()).toEqual({ items: [] });
    expect(seen).toHaveLength(3);
  });

  it("honours the server's Retry-After (capped by maxDelayMs)", async () => {
    const seen = flaky([new HttpResponse(null, { status: 429, headers: { 'retry-after': '120' } })], () =>
      HttpResponse.json({ items: [] }),
    );
    await client({ retry: { maxDelayMs: 5 } }).patients.search();
    expect(seen).toHaveLength(2);
  });

  it('gives up after `retries` and reports the last answer', async () => {
    const seen = record(() => new HttpResponse(null, { status: 502 }));
    const error = (await client({ retry: { retries: 2, baseDelayMs: 1 } })
      .analyses.get('a1')
      .catch((e: unknown) => e)) as CdssApiError;
    expect(error.status).toBe(502);
    expect(seen).toHaveLength(3);
  });

  it('never repeats a POST without an Idempotency-Key, nor a 4xx', async () => {
    let seen = record(() => new HttpResponse(null, { status: 503 }));
    await client()
      .analyses.request('1.2.3', {} as never)
      .catch(() => undefined);
    expect(seen).toHaveLength(1);
    seen = record(() => new HttpResponse(null, { status: 404 }));
    await client()
      .patients.get('p1')
      .catch(() => undefined);
    expect(seen).toHaveLength(1);
  });

  it('repeats a POST that carries an Idempotency-Key, with the same key', async () => {
    const created = { id: 'p1', ...PATIENT_INPUT };
    const seen = flaky([new HttpResponse(null, { status: 504 })], () => HttpResponse.json(created, { status: 201 }));
    expect(await client().patients.create(PATIENT_INPUT, { idempotencyKey: 'k-7' })).toEqual(created);
    expect(seen.map((s) => s.headers['idempotency-key'])).toEqual(['k-7', 'k-7']);
  });

  it('stops retrying when the caller aborts', async () => {
    const seen = record(() => new HttpResponse(null, { status: 503 }));
    const controller = new AbortController();
    const pending = client({ retry: { retries: 5, baseDelayMs: 60_000 } })
      .studies.volume('1.2.3', '4.5.6', controller.signal)
      .catch((e: unknown) => e);
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error('left the page'));
    expect(await pending).toEqual(new Error('left the page'));
    expect(seen).toHaveLength(1);
  });
});

describe('createCdssClient: voxel grids', () => {
  it('reads dims and spacing from the headers and checks the voxel count', async () => {
    record(
      () =>
        new HttpResponse(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer, {
          headers: { 'x-volume-dims': '2,2,2', 'x-volume-spacing': '1,1,2.5' },
        }),
    );
    const grid = await client().studies.volume('1.2.3', '4.5.6');
    expect(grid.dims).toEqual([2, 2, 2]);
    expect(grid.spacing).toEqual([1, 1, 2.5]);
    expect(Array.from(grid.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    record(
      () =>
        new HttpResponse(new Uint8Array(7).buffer, {
          headers: { 'x-volume-dims': '2,2,2', 'x-volume-spacing': '1,1,1' },
        }),
    );
    await expect(client().analyses.segmentation('a1')).rejects.toThrow('7 voxels for dims 2x2x2');
  });
});
