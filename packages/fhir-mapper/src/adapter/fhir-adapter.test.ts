import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { HttpError, TimeoutError, ValidationError } from '@cdss/core';
import type { Bundle, Patient } from 'fhir/r4.js';
import { FhirAdapter } from './fhir-adapter.js';
import { FhirConflictError, FhirInvalidResourceError, FhirServerError, fhirErrorFor } from './errors.js';
import { KeyedMutex } from './keyed-mutex.js';

const BASE = 'https://fhir.example.test/r4';
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const FHIR = { 'content-type': 'application/fhir+json' };
const noSleep = { now: () => 0, sleep: async () => undefined };
const adapter = (extra: Partial<ConstructorParameters<typeof FhirAdapter>[0]> = {}): FhirAdapter =>
  new FhirAdapter({ baseUrl: BASE, clock: noSleep, retry: { maxRetries: 2, baseDelayMs: 1 }, ...extra });
const outcome = (diagnostics: string) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'processing', diagnostics }],
});
const patient: Patient = { resourceType: 'Patient', identifier: [{ system: 'urn:s', value: '1' }] };

describe('FhirAdapter', () => {
  it('rejects invalid options', () => {
    expect(() => new FhirAdapter({ baseUrl: 'not a url' })).toThrow(ValidationError);
    expect(() => new FhirAdapter({ baseUrl: 'ftp://x/y' })).toThrow(ValidationError);
  });

  it('retries an idempotent conditional create on 503 and sends If-None-Exist', async () => {
    const seen: string[] = [];
    let calls = 0;
    server.use(
      http.post(`${BASE}/Patient`, ({ request }) => {
        seen.push(request.headers.get('if-none-exist') ?? '');
        calls++;
        return calls < 3
          ? HttpResponse.json(outcome('busy'), { status: 503, headers: FHIR })
          : HttpResponse.json({ ...patient, id: 'p1', meta: { versionId: '1' } }, { status: 201, headers: FHIR });
      }),
    );
    const r = await adapter().createIfNoneExist(patient, { system: 'urn:s', value: '1' });
    expect(r).toMatchObject({ id: 'p1', versionId: '1', created: true, status: 201 });
    expect(calls).toBe(3);
    expect(seen[0]).toBe('identifier=urn%3As|1');
  });

  describe('batch', () => {
    const events = (n: number): Bundle => ({
      resourceType: 'Bundle',
      type: 'batch',
      entry: Array.from({ length: n }, (_, i) => ({
        resource: { resourceType: 'Basic', id: `b${i}`, code: { text: 'x' } },
        request: { method: 'PUT', url: `Basic/b${i}` },
      })) as Bundle['entry'],
    });
    const answer = (...statuses: string[]): Bundle => ({
      resourceType: 'Bundle',
      type: 'batch-response',
      entry: statuses.map((status) => ({
        response: { status, ...(status.startsWith('2') ? {} : { outcome: outcome(`entry ${status}`) }) },
      })) as Bundle['entry'],
    });

    /** Answers every POST with `response` and records the Bundles posted. */
    const recordPosts = (response: Bundle): Bundle[] => {
      const posted: Bundle[] = [];
      server.use(
        http.post(BASE, async ({ request }) => {
          posted.push((await request.json()) as Bundle);
          return HttpResponse.json(response, { headers: FHIR });
        }),
      );
      return posted;
    };

    it('posts one Bundle for all entries and returns the response when every entry succeeded', async () => {
      const posted = recordPosts(answer('201 Created', '200 OK', '201'));
      const r = await adapter().batch(events(3));
      expect(r.type).toBe('batch-response');
      expect(posted).toHaveLength(1);
      expect(posted[0]?.entry).toHaveLength(3);
    });

    it('posts entries held as JSON text as the same Bundle, with the same checks', async () => {
      const posted = recordPosts(answer('201 Created', '200 OK', '201'));
      const entries = events(3).entry!;
      const part = (from: number, to: number) => ({
        json: entries
          .slice(from, to)
          .map((e) => JSON.stringify(e))
          .join(','),
        requests: entries.slice(from, to).map((e) => e.request!),
      });
      const r = await adapter().batchText([part(0, 2), part(2, 3)]);
      expect(r.type).toBe('batch-response');
      expect(posted).toEqual([events(3)]);
      await expect(adapter({ retry: false }).batchText([part(0, 2)])).rejects.toThrow('wrong number of entries');
      await expect(adapter().batchText([])).rejects.toBeInstanceOf(ValidationError);
      const post = { json: '{}', requests: [{ method: 'POST' as const, url: 'Basic' }] };
      await expect(adapter().batchText([part(0, 1), post])).rejects.toBeInstanceOf(ValidationError);
      expect(posted).toHaveLength(2);
    });

    it('asks for Prefer: return=minimal only when told to', async () => {
      const prefer: Array<string | null> = [];
      server.use(
        http.post(BASE, ({ request }) => {
          prefer.push(request.headers.get('prefer'));
          return HttpResponse.json(answer('200 OK'), { headers: FHIR });
        }),
      );
      await adapter({ bearerToken: 't' }).batch(events(1));
      await adapter({ bearerToken: 't' }).batch(events(1), { returnMinimal: true });
      expect(prefer).toEqual([null, 'return=minimal']);
    });

    it('fails with the retryable entry error first, and a rejection alone as invalid', async () => {
      server.use(http.post(BASE, () => HttpResponse.json(answer('201', '400 Bad Request', '503'), { headers: FHIR })));
      const retryable = await adapter({ retry: false })
        .batch(events(3))
        .catch((e: unknown) => e);
      expect(retryable).toBeInstanceOf(FhirServerError);
      expect(retryable).not.toBeInstanceOf(FhirInvalidResourceError);
      expect((retryable as FhirServerError).status).toBe(503);
      expect((retryable as Error).message).toContain('2 of 3 entries failed');

      server.use(http.post(BASE, () => HttpResponse.json(answer('201', '422 Unprocessable'), { headers: FHIR })));
      const rejected = await adapter()
        .batch(events(2))
        .catch((e: unknown) => e);
      expect(rejected).toBeInstanceOf(FhirInvalidResourceError);
      expect((rejected as FhirInvalidResourceError).outcome?.issue?.[0]?.diagnostics).toBe('entry 422 Unprocessable');

      server.use(http.post(BASE, () => HttpResponse.json(answer('201'), { headers: FHIR })));
      await expect(adapter({ retry: false }).batch(events(2))).rejects.toThrow('wrong number of entries');
    });

    it('retries the whole Bundle when the server fails, and refuses a Bundle that is not an idempotent batch', async () => {
      let calls = 0;
      server.use(
        http.post(BASE, () =>
          ++calls < 2
            ? HttpResponse.json(outcome('busy'), { status: 503, headers: FHIR })
            : HttpResponse.json(answer('200'), { headers: FHIR }),
        ),
      );
      await adapter().batch(events(1));
      expect(calls).toBe(2);
      await expect(adapter().batch({ ...events(1), type: 'transaction' })).rejects.toBeInstanceOf(ValidationError);
      const post: Bundle = {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ resource: patient, request: { method: 'POST', url: 'Patient' } }],
      };
      await expect(adapter().batch(post)).rejects.toBeInstanceOf(ValidationError);
      expect(calls).toBe(2);
    });
  });

  it('never retries a plain create (not idempotent)', async () => {
    let calls = 0;
    server.use(
      http.post(`${BASE}/Patient`, () => {
        calls++;
        return HttpResponse.json(outcome('busy'), { status: 503, headers: FHIR });
      }),
    );
    const err = await adapter()
      .create(patient)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirServerError);
    expect((err as FhirServerError).status).toBe(503);
    expect((err as FhirServerError).outcome?.issue?.[0]?.diagnostics).toBe('busy');
    expect(calls).toBe(1);
  });

  it('does not retry a transaction with a plain POST entry, but does retry an all-conditional one', async () => {
    let calls = 0;
    server.use(
      http.post(`${BASE}`, () => {
        calls++;
        return new HttpResponse(null, { status: 502 });
      }),
      http.post(`${BASE}/`, () => {
        calls++;
        return new HttpResponse(null, { status: 502 });
      }),
    );
    const plain: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: patient, request: { method: 'POST', url: 'Patient' } }],
    };
    await expect(adapter().transaction(plain)).rejects.toBeInstanceOf(FhirServerError);
    expect(calls).toBe(1);
    calls = 0;
    const conditional: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: patient, request: { method: 'PUT', url: 'Patient?identifier=urn:s|1' } }],
    };
    await expect(adapter().transaction(conditional)).rejects.toBeInstanceOf(FhirServerError);
    expect(calls).toBe(3);
    await expect(adapter().transaction({ resourceType: 'Bundle', type: 'batch' })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it('maps statuses to typed errors', async () => {
    server.use(
      http.put(`${BASE}/Patient/p1`, ({ request }) =>
        request.headers.get('if-match') === 'W/"1"'
          ? HttpResponse.json(outcome('HAPI-0989: Version 1 is not the most recent version'), {
              status: 412,
              headers: FHIR,
            })
          : HttpResponse.json(outcome('bad'), { status: 422, headers: FHIR }),
      ),
      http.post(`${BASE}/Patient`, () =>
        HttpResponse.json(outcome('Failed to CREATE: this search matched 2 resources'), { status: 412, headers: FHIR }),
      ),
    );
    const stale = await adapter()
      .update({ ...patient, id: 'p1' }, { ifMatch: '1' })
      .catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(FhirConflictError);
    expect((stale as FhirConflictError).kind).toBe('version-conflict');
    await expect(adapter().update({ ...patient, id: 'p1' })).rejects.toBeInstanceOf(FhirInvalidResourceError);
    const multi = await adapter()
      .upsert(patient, { system: 'urn:s', value: '1' })
      .catch((e: unknown) => e);
    expect((multi as FhirConflictError).kind).toBe('multiple-matches');
    // messages carry neither the server's diagnostics nor the identifier values of the conditional URL
    expect((stale as Error).message).toBe(`PUT ${BASE}/Patient/p1: 412 (processing)`);
    expect((multi as Error).message).not.toMatch(/urn|matched/);
    const conditional = fhirErrorFor({ method: 'PUT', url: `${BASE}/Patient?identifier=urn:s|1`, status: 412 });
    expect(conditional.message).toBe(`PUT ${BASE}/Patient?…: 412`);
    expect(conditional.url).toContain('identifier=urn:s|1');
  });

  it('reports no response as an HttpError without status, and a hung server as TimeoutError', async () => {
    server.use(
      http.get(`${BASE}/Patient/down`, () => HttpResponse.error()),
      http.get(`${BASE}/Patient/slow`, async () => {
        await new Promise((r) => setTimeout(r, 500));
        return HttpResponse.json(patient, { headers: FHIR });
      }),
    );
    const down = await adapter({ retry: false })
      .read('Patient', 'down')
      .catch((e: unknown) => e);
    expect(HttpError.isInstance(down)).toBe(true);
    expect((down as HttpError).status).toBeUndefined();
    await expect(adapter({ retry: false, timeoutMs: 50 }).read('Patient', 'slow')).rejects.toBeInstanceOf(TimeoutError);
  });

  it('follows next links, stops on an empty page, and refuses links to another origin', async () => {
    const page = (n: number, next?: string, entries = 2): Bundle => ({
      resourceType: 'Bundle',
      type: 'searchset',
      entry: Array.from({ length: entries }, (_, i) => ({
        resource: { resourceType: 'Patient', id: `p${n}-${i}` } as Patient,
        search: { mode: 'match' },
      })),
      link: next ? [{ relation: 'next', url: next }] : [],
    });
    server.use(
      http.get(`${BASE}/Patient`, () =>
        HttpResponse.json(page(1, `${BASE}?_getpages=abc&_getpagesoffset=2`), { headers: FHIR }),
      ),
      http.get(`${BASE}`, ({ request }) => {
        const off = new URL(request.url).searchParams.get('_getpagesoffset');
        return off === '2'
          ? HttpResponse.json(page(2, `${BASE}?_getpages=abc&_getpagesoffset=4`), { headers: FHIR })
          : HttpResponse.json(page(3, `${BASE}?_getpages=abc&_getpagesoffset=6`, 0), { headers: FHIR });
      }),
    );
    const ids: string[] = [];
    for await (const p of adapter().searchAll<Patient>('Patient', { family: 'x' })) ids.push(p.id as string);
    expect(ids).toEqual(['p1-0', 'p1-1', 'p2-0', 'p2-1']);
    server.use(
      http.get(`${BASE}/Patient`, () => HttpResponse.json(page(1, 'https://evil.example/steal'), { headers: FHIR })),
    );
    await expect(async () => {
      for await (const _ of adapter().searchAll('Patient')) void _;
    }).rejects.toBeInstanceOf(FhirServerError);
  });

  it('serialises conditional writes of one identifier (no HAPI race), and runs others in parallel', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    server.use(
      http.post(`${BASE}/Patient`, async ({ request }) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        const id = (request.headers.get('if-none-exist') ?? '').replace(/\W/g, '');
        return HttpResponse.json({ ...patient, id, meta: { versionId: '1' } }, { status: 201, headers: FHIR });
      }),
    );
    const a = adapter();
    await Promise.all(Array.from({ length: 5 }, () => a.upsert(patient, { system: 'urn:s', value: '1' })));
    expect(maxInFlight).toBe(1);
    maxInFlight = 0;
    await Promise.all(Array.from({ length: 5 }, (_, i) => a.upsert(patient, { system: 'urn:s', value: String(i) })));
    expect(maxInFlight).toBeGreaterThan(1);
  });
});

describe('FhirAdapter.upsert', () => {
  const existing = { ...patient, id: 'p9', active: false, meta: { versionId: '3' } };

  it('updates an existing match by id with If-Match, and retries after losing a version race', async () => {
    const puts: string[] = [];
    let version = 3;
    server.use(
      http.post(`${BASE}/Patient`, () =>
        HttpResponse.json({ ...existing, meta: { versionId: String(version) } }, { status: 200, headers: FHIR }),
      ),
      http.put(`${BASE}/Patient/p9`, async ({ request }) => {
        const ifMatch = request.headers.get('if-match') ?? '';
        puts.push(ifMatch);
        if (puts.length === 1) {
          version = 4; // another writer got in first
          return HttpResponse.json(outcome('version conflict'), { status: 412, headers: FHIR });
        }
        const body = (await request.json()) as Patient;
        return HttpResponse.json({ ...body, meta: { versionId: '5' } }, { headers: FHIR });
      }),
    );
    const r = await adapter().upsert({ ...patient, active: true }, { system: 'urn:s', value: '1' });
    expect(puts).toEqual(['W/"3"', 'W/"4"']);
    expect(r).toMatchObject({ id: 'p9', versionId: '5', created: false });
    expect(r.resource.active).toBe(true);
  });

  it('sends no update when the existing resource already has the content', async () => {
    let puts = 0;
    server.use(
      http.post(`${BASE}/Patient`, () => HttpResponse.json(existing, { status: 200, headers: FHIR })),
      http.put(`${BASE}/Patient/p9`, () => {
        puts++;
        return HttpResponse.json(existing, { headers: FHIR });
      }),
    );
    const r = await adapter().upsert({ ...patient, active: false }, { system: 'urn:s', value: '1' });
    expect(puts).toBe(0);
    expect(r).toMatchObject({ id: 'p9', versionId: '3', created: false });
  });
});

describe('KeyedMutex', () => {
  it('runs overlapping key sets one at a time without deadlock', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const job = (name: string, keys: string[]) =>
      m.run(keys, async () => {
        log.push(`+${name}`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`-${name}`);
      });
    await Promise.all([job('A', ['x', 'y']), job('B', ['y', 'z']), job('C', ['z', 'x'])]);
    expect(log).toEqual(['+A', '-A', '+B', '-B', '+C', '-C']);
    expect(m.size).toBe(0);
  });
});
