import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { fakeArchive, fakeRecords, memoryCache, startHarness, type Harness } from './test-support.js';
import { patientRoutes } from './domain/patients.js';
import { studyRoutes } from './domain/studies.js';
import { loadConfig, ConfigError } from './config.js';

const records = fakeRecords();
const cache = memoryCache();
let h: Harness;

const input = { givenName: 'Jane', familyName: 'Doe', birthDate: '1970-01-02', sex: 'female' as const };
/** Creates even when the same patient exists (the idempotency tests post `input` again and again). */
const CREATE_ANYWAY = '/api/patients?confirm=duplicate';

async function call(
  method: string,
  path: string,
  options: { user?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.user) headers['authorization'] = `Bearer ${await h.token(options.user)}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${h.baseUrl}${path}`, {
    method,
    headers,
    ...(options.body !== undefined
      ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }
      : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
  };
}

beforeAll(async () => {
  h = await startHarness(({ auditor, bus, fhir }) => [
    ...patientRoutes({ records, cache, fhir, bus, auditor }),
    ...studyRoutes({
      archive: fakeArchive([
        { uid: '1.2.3', patientId: 'p1', modalities: ['MR'], series: [{ uid: '1.2.3.1', description: 'T1' }] },
      ]),
      auditor,
    }),
  ]);
});
afterAll(async () => h.close());

describe('configuration', () => {
  it('defaults to sandbox and names each wrong variable', () => {
    expect(loadConfig({}).CDSS_MODE).toBe('sandbox');
    expect(() => loadConfig({ PORT: 'eighty', ORTHANC_URL: 'ftp://x' })).toThrow(ConfigError);
    const messageOf = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    };
    const wrongTypes = messageOf({ PORT: 'eighty', ORTHANC_URL: 'ftp://x' });
    for (const name of ['PORT', 'ORTHANC_URL']) expect(wrongTypes).toContain(name);
    const missing = messageOf({
      CDSS_MODE: 'connected',
      OPENEMR_URL: 'http://127.0.0.1:9/',
      CDSS_AUTH_PUBLIC_KEY: 'nope',
    });
    for (const name of ['CDSS_AUTH_PUBLIC_KEY']) expect(missing).toContain(name);
    const crossField = messageOf({ CDSS_MODE: 'connected', OPENEMR_URL: 'http://127.0.0.1:9/' });
    for (const name of ['CDSS_AUTH_JWKS_URL', 'CDSS_WEBHOOK_SECRET', 'OPENEMR_CLIENT_ID'])
      expect(crossField).toContain(name);
    expect(crossField).not.toContain('http://127.0.0.1:9/');
  });
});

describe('HTTP surface', () => {
  it('serves health and a generated OpenAPI 3.1 document without a token', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200);
    const doc = await call('GET', '/openapi.json');
    expect(doc.body?.['openapi']).toBe('3.1.0');
    expect(Object.keys(doc.body?.['paths'] as object)).toContain('/api/patients/{id}');
    expect((await fetch(`${h.baseUrl}/docs`)).status).toBe(200);
  });

  it('answers unknown routes with an OperationOutcome 404', async () => {
    const response = await call('GET', '/api/nothing-here', { user: 'demo-physician' });
    expect(response.status).toBe(404);
    expect(response.body?.['resourceType']).toBe('OperationOutcome');
  });
});

describe('patients', () => {
  it('writes OpenEMR first, then the cache, queues the FHIR sync and audits', async () => {
    const created = await call('POST', '/api/patients', { user: 'demo-physician', body: input });
    expect(created.status).toBe(201);
    const id = created.body?.['id'] as string;
    expect(records.patients.has(id)).toBe(true);
    expect(await cache.store.get(`patient:${id}`)).toBeDefined();
    expect(h.fhir.queued.some((q) => q.kind === 'patient')).toBe(true);
    const read = await call('GET', `/api/patients/${id}`, { user: 'demo-nurse' });
    expect(read.body).toMatchObject({ data: { id, familyName: 'Doe' }, stale: false });
    const audit = h.audit.records.filter((r) => r.patientId === id);
    expect(audit.map((r) => [r.action, r.outcome, r.roles[0]])).toEqual([
      ['create', 'success', 'physician'],
      ['read', 'success', 'nurse'],
    ]);
  });

  it('replays a retried create with the same Idempotency-Key without a second upstream write', async () => {
    const before = records.writes;
    const headers = { 'idempotency-key': 'key-123456789' };
    const body = { ...input, familyName: 'Replay' };
    const first = await call('POST', '/api/patients', { user: 'demo-physician', body, headers });
    const second = await call('POST', '/api/patients', { user: 'demo-physician', body, headers });
    expect(first.status).toBe(201);
    expect(second.body?.['id']).toBe(first.body?.['id']);
    expect(records.writes).toBe(before + 1);
  });

  it('binds an Idempotency-Key to its caller and its request: another body 422, another caller a new write', async () => {
    const headers = { 'idempotency-key': 'bound-key-0001' };
    const first = await call('POST', CREATE_ANYWAY, { user: 'demo-physician', body: input, headers });
    expect(first.status).toBe(201);
    const before = records.writes;
    const other = await call('POST', CREATE_ANYWAY, {
      user: 'demo-physician',
      body: { ...input, givenName: 'Janet' },
      headers,
    });
    expect(other.status).toBe(422);
    expect(JSON.stringify(other.body)).toContain('Idempotency-Key');
    expect(records.writes).toBe(before);
    // the same key from another user is that user's own key
    const nurse = await call('POST', CREATE_ANYWAY, { user: 'demo-nurse', body: input, headers });
    expect(nurse.status).toBe(201);
    expect(nurse.body?.['id']).not.toBe(first.body?.['id']);
    expect(records.writes).toBe(before + 1);
  });

  it('answers a concurrent duplicate with 409 and writes once', async () => {
    records.delayMs = 200;
    try {
      const headers = { 'idempotency-key': 'concurrent-0001' };
      const before = records.writes;
      const [a, b] = await Promise.all([
        call('POST', CREATE_ANYWAY, { user: 'demo-physician', body: input, headers }),
        call('POST', CREATE_ANYWAY, { user: 'demo-physician', body: input, headers }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      expect(records.writes).toBe(before + 1);
    } finally {
      records.delayMs = 0;
    }
  });

  it.each([
    ['short', 'short'],
    ['one character over 255', 'k'.repeat(256)],
    ['with a space', 'has a space in it'],
    ['with a non-ASCII character', 'clé-idempotence'],
  ])('refuses a %s Idempotency-Key with 400 and writes nothing', async (_what, key) => {
    const before = records.writes;
    const response = await call('POST', CREATE_ANYWAY, {
      user: 'demo-physician',
      body: input,
      headers: { 'idempotency-key': key },
    });
    expect(response.status).toBe(400);
    expect(response.body?.['resourceType']).toBe('OperationOutcome');
    expect(JSON.stringify(response.body)).toContain('Idempotency-Key');
    expect(records.writes).toBe(before);
  });

  it('never truncates long keys: two 255-character keys differing in the last character are two writes', async () => {
    const before = records.writes;
    const stem = 'k'.repeat(254);
    const a = await call('POST', CREATE_ANYWAY, {
      user: 'demo-physician',
      body: input,
      headers: { 'idempotency-key': `${stem}a` },
    });
    const b = await call('POST', CREATE_ANYWAY, {
      user: 'demo-physician',
      body: input,
      headers: { 'idempotency-key': `${stem}b` },
    });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body?.['id']).not.toBe(b.body?.['id']);
    expect(records.writes).toBe(before + 2);
  });

  it('answers 409 with the candidates for a patient with the same name and birth date, unless confirmed', async () => {
    const body = { ...input, familyName: 'Twin' };
    const first = await call('POST', '/api/patients', { user: 'demo-physician', body });
    expect(first.status).toBe(201);
    const before = records.writes;
    const again = await call('POST', '/api/patients', { user: 'demo-physician', body });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'duplicate' }],
      contained: [{ resourceType: 'Patient', id: first.body?.['id'], name: [{ family: 'Twin', given: ['Jane'] }] }],
    });
    expect(records.writes).toBe(before);
    const confirmed = await call('POST', '/api/patients?confirm=duplicate', { user: 'demo-physician', body });
    expect(confirmed.status).toBe(201);
    expect(confirmed.body?.['id']).not.toBe(first.body?.['id']);
    expect((await call('POST', '/api/patients?confirm=yes', { user: 'demo-physician', body })).status).toBe(400);
    // A refused attempt leaves its Idempotency-Key free for the confirmed retry.
    const headers = { 'idempotency-key': 'duplicate-then-confirm-1' };
    const refused = await call('POST', '/api/patients', { user: 'demo-physician', body, headers });
    expect(refused.status).toBe(409);
    const retried = await call('POST', CREATE_ANYWAY, { user: 'demo-physician', body, headers });
    expect(retried.status).toBe(201);
  });

  it.each([
    ['a wrong type', { ...input, birthDate: 19700102 }, 'birthDate'],
    ['a missing field', { givenName: 'Jane', birthDate: '1970-01-02', sex: 'female' }, 'familyName'],
    ['an unknown field', { ...input, ssn: '123-45-6789' }, ''],
    ['a too-short last name', { ...input, familyName: 'D' }, 'familyName'],
    ['a birth date in the future', { ...input, birthDate: '6085-01-02' }, 'must not be in the future'],
    ['a birth date before 1900', { ...input, birthDate: '1870-01-02' }, 'must not be before 1900-01-01'],
    ['a birth date that is no date', { ...input, birthDate: '1970-02-30' }, 'birthDate'],
  ])('refuses %s with a 400 OperationOutcome and changes nothing', async (_what, body, field) => {
    const before = records.writes;
    const response = await call('POST', '/api/patients', { user: 'demo-physician', body });
    expect(response.status).toBe(400);
    expect(response.body?.['resourceType']).toBe('OperationOutcome');
    if (field) expect(JSON.stringify(response.body)).toContain(field);
    expect(records.writes).toBe(before);
  });

  it('refuses malformed JSON and oversize bodies', async () => {
    expect((await call('POST', '/api/patients', { user: 'demo-physician', body: '{"givenName":' })).status).toBe(400);
    const huge = { ...input, givenName: 'x'.repeat(2 * 1024 * 1024) };
    expect((await call('POST', '/api/patients', { user: 'demo-physician', body: huge })).status).toBe(413);
  });

  it('answers 503 when OpenEMR is down, writes nothing, and audits the failure', async () => {
    records.down = true;
    try {
      const before = cache.store.size;
      const response = await call('POST', '/api/patients', {
        user: 'demo-physician',
        body: { ...input, familyName: 'Down' },
      });
      expect(response.status).toBe(503);
      expect(cache.store.size).toBe(before);
      expect(h.audit.records.at(-1)).toMatchObject({ action: 'create', outcome: 'failure' });
    } finally {
      records.down = false;
    }
  });

  it('never returns stack traces or upstream internals', async () => {
    records.down = true;
    try {
      const response = await call('GET', '/api/patients?q=x', { user: 'demo-physician' });
      expect(JSON.stringify(response.body)).not.toMatch(/ECONNREFUSED|at .*\.ts/);
    } finally {
      records.down = false;
    }
  });
});

describe('route security', () => {
  it('answers 401 without a token and 403 for a role the policy denies, on every route of the table', async () => {
    const { rolesWith, ROLES } = await import('./auth/rbac.js');
    for (const route of h.server.routes) {
      const path = route.path.replace(/\{(\w+)\}/g, (_m: string, name: string) =>
        name === 'studyUid' ? '1.2.3' : 'p1',
      );
      const body = route.body ? {} : undefined;
      if (route.access === 'public') continue;
      const anonymous = await call(route.method.toUpperCase(), path, { body });
      expect(anonymous.status, `${route.method} ${route.path} without a token`).toBe(401);
      const bad = await call(route.method.toUpperCase(), path, {
        body,
        headers: { authorization: 'Bearer not-a-jwt' },
      });
      expect(bad.status, `${route.method} ${route.path} with a bad token`).toBe(401);
      if (typeof route.access !== 'object') continue;
      const allowed = rolesWith(route.access.permission);
      const denied = ROLES.find((role) => !allowed.includes(role));
      if (!denied) continue;
      const { DEMO_USERS } = await import('./auth/tokens.js');
      const user = DEMO_USERS.find((u) => u.role === denied)!;
      const forbidden = await call(route.method.toUpperCase(), path, { user: user.id, body });
      expect(forbidden.status, `${route.method} ${route.path} as ${denied}`).toBe(403);
      expect(h.audit.records.at(-1), `${route.path} denial audited`).toMatchObject({
        outcome: 'denied',
        userId: user.id,
      });
    }
  });
});

describe('websocket', () => {
  it('authenticates by first message, delivers patient.updated to subscribers, and refuses bad tokens', async () => {
    const ws = new WebSocket(`${h.baseUrl.replace('http', 'ws')}/ws`);
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'auth', token: await h.token('demo-nurse') }));
    await expect.poll(() => messages.some((m) => m['type'] === 'ready')).toBe(true);
    ws.send(JSON.stringify({ type: 'subscribe', topic: 'patient:p-42' }));
    await expect.poll(() => messages.some((m) => m['type'] === 'subscribed')).toBe(true);
    await h.bus.publish({ type: 'patient.updated', patientId: 'p-42', data: {}, time: new Date().toISOString() });
    await h.bus.publish({ type: 'patient.updated', patientId: 'p-other', data: {}, time: new Date().toISOString() });
    await expect.poll(() => messages.filter((m) => m['type'] === 'event').length).toBe(1);
    ws.close();

    const bad = new WebSocket(`${h.baseUrl.replace('http', 'ws')}/ws`);
    await new Promise((resolve) => bad.once('open', resolve));
    bad.send(JSON.stringify({ type: 'auth', token: 'forged' }));
    const code = await new Promise<number>((resolve) => bad.once('close', (c) => resolve(c)));
    expect(code).toBe(1008);
  });
});

describe('binary voxel grids', () => {
  it('serves a series volume with its dims and spacing to the typed client', async () => {
    const { createCdssClient } = await import('@cdss/client');
    const token = await h.token('demo-nurse');
    const client = createCdssClient({ baseUrl: h.baseUrl, getToken: () => token });
    const volume = await client.studies.volume('1.2.3', '1.2.3.1');
    expect(volume.dims).toEqual([2, 2, 2]);
    expect([...volume.data]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const missing = await client.studies.volume('1.2.3', '1.2.3.9').catch((e: unknown) => e);
    expect((missing as { status?: number }).status).toBe(404);
    expect(h.audit.records.at(-1)).toMatchObject({ action: 'read', patientId: 'p1' });
  });
});

describe('graceful shutdown', () => {
  it('closes WebSockets with 1001 (going away) and stops accepting connections', async () => {
    const other = await startHarness(() => []);
    const ws = new WebSocket(`${other.baseUrl.replace('http', 'ws')}/ws`);
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'auth', token: await other.token('demo-nurse') }));
    await new Promise((resolve) => ws.once('message', resolve));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await other.close();
    expect(await closed).toBe(1001);
    await expect(fetch(`${other.baseUrl}/healthz`)).rejects.toThrow();
  });
});
