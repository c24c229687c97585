/**
 * `@cdss/client` against the server's own OpenAPI document: every method of the client sends a request the document
 * declares (path, method, query parameters, headers), every operation of the document under /api is either a client
 * method or listed below with the reason it is not, and a few calls go through to the composed sandbox server.
 * (The client's request and answer handling is tested with msw in packages/client.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCdssClient, type CdssClient } from '@cdss/client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { freePort } from '@cdss/core/testing';

interface Operation {
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: unknown;
}
type OpenApi = { paths: Record<string, Record<string, Operation>> };

/** Operations under /api the client does not offer, and why. */
const NOT_IN_CLIENT: Record<string, string> = {
  'POST /api/webhooks/ai': 'called by AI workers (a signed webhook), not by users',
  'GET /api/smart/config': 'read by the dashboard before a SMART launch, without a CDSS token',
  'POST /api/smart/session': 'called by the dashboard after a SMART launch (exchanges the id_token)',
  'POST /api/sandbox/cds-hooks/patient-view': 'sandbox demo of an EHR’s signed CDS Hooks call, for trying the service',
};

const PATIENT = { givenName: 'Ada', familyName: 'Lovelace', birthDate: '1990-01-01', sex: 'female' as const };
/** Every client method with arguments that exercise its optional parts (query, headers). */
const CALLS: Record<string, (c: CdssClient) => Promise<unknown>> = {
  'sandbox.users': (c) => c.sandbox.users(),
  'sandbox.token': (c) => c.sandbox.token('demo-physician'),
  'patients.search': (c) => c.patients.search({ q: 'ada', limit: 5, cursor: 'c' }),
  'patients.get': (c) => c.patients.get('p1'),
  'patients.create': (c) => c.patients.create(PATIENT, { idempotencyKey: 'k', confirmDuplicate: true }),
  'patients.update': (c) => c.patients.update('p1', PATIENT),
  'patients.encounters': (c) => c.patients.encounters('p1'),
  'patients.problems': (c) => c.patients.problems('p1'),
  'patients.allergies': (c) => c.patients.allergies('p1'),
  'patients.medications': (c) => c.patients.medications('p1'),
  'patients.vitals': (c) => c.patients.vitals('p1'),
  'patients.studies': (c) => c.patients.studies('p1'),
  'patients.assessment': (c) => c.patients.assessment('p1'),
  'studies.get': (c) => c.studies.get('1.2.3'),
  'studies.volume': (c) => c.studies.volume('1.2.3', '4.5.6'),
  'analyses.request': (c) => c.analyses.request('1.2.3', {} as never),
  'analyses.get': (c) => c.analyses.get('a1'),
  'analyses.list': (c) => c.analyses.list({ patient: 'p1', review: 'pending' }),
  'analyses.cancel': (c) => c.analyses.cancel('a1'),
  'analyses.review': (c) => c.analyses.review('a1', { decision: 'approve' }),
  'analyses.segmentation': (c) => c.analyses.segmentation('a1'),
  'analyses.report': (c) => c.analyses.report('a1'),
  'analyses.claim': (c) => c.analyses.claim('a1'),
  'analyses.release': (c) => c.analyses.release('a1'),
  'analyses.measurements': (c) => c.analyses.measurements('a1'),
  'analyses.saveMeasurements': (c) => c.analyses.saveMeasurements('a1', []),
  worklist: (c) => c.worklist(),
  'audit.list': (c) =>
    c.audit.list({ patient: 'p1', user: 'u', outcome: 'success', from: 'f', to: 't', limit: 1, cursor: 'c' }),
};

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-client-openapi-'));
let composed: ComposedServer;
let baseUrl: string;
let doc: OpenApi;

beforeAll(async () => {
  const config = loadConfig({ CDSS_DATA_DIR: dataDir, CDSS_SANDBOX_STUDIES: '0', CDSS_LOG_LEVEL: 'error' });
  composed = await composeServer(config, createLogger('error'), 'test');
  baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
  doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as OpenApi;
}, 180_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The document's operation for a concrete request, with the path template it matched. */
function operationOf(method: string, path: string): { key: string; operation: Operation } | undefined {
  for (const [template, operations] of Object.entries(doc.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    const operation = operations[method.toLowerCase()];
    if (pattern.test(path) && operation) return { key: `${method} ${template}`, operation };
  }
  return undefined;
}

describe('@cdss/client and the OpenAPI document', () => {
  it('has a call here for every method of the client', () => {
    const client = createCdssClient({ baseUrl: 'http://unused' });
    const methods = Object.entries(client).flatMap(([group, members]) =>
      typeof members === 'function' ? [group] : Object.keys(members as object).map((name) => `${group}.${name}`),
    );
    expect(methods.sort()).toEqual(Object.keys(CALLS).sort());
  });

  it('sends only requests the document declares, and covers every /api operation', async () => {
    const covered = new Set<string>();
    for (const [name, call] of Object.entries(CALLS)) {
      let sent: { method: string; url: URL; headers: Headers } | undefined;
      const client = createCdssClient({
        baseUrl: 'http://cdss.test',
        getToken: () => 't',
        retry: { retries: 0 },
        fetch: (input, init) => {
          sent = { method: init?.method ?? 'GET', url: new URL(String(input)), headers: new Headers(init?.headers) };
          return Promise.reject(new Error('recorded'));
        },
      });
      await call(client).catch(() => undefined);
      expect(sent, name).toBeDefined();
      const found = operationOf(sent!.method, sent!.url.pathname);
      expect(found, `${name}: ${sent!.method} ${sent!.url.pathname} is not in the OpenAPI document`).toBeDefined();
      covered.add(found!.key);
      const declared = new Set((found!.operation.parameters ?? []).map((p) => `${p.in}:${p.name.toLowerCase()}`));
      for (const key of sent!.url.searchParams.keys())
        expect(declared, `${name}: query ${key}`).toContain(`query:${key}`);
      if (sent!.headers.has('idempotency-key')) expect(declared, name).toContain('header:idempotency-key');
    }
    const apiOperations = Object.entries(doc.paths)
      .filter(([template]) => template.startsWith('/api/'))
      .flatMap(([template, operations]) =>
        Object.keys(operations)
          .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
          .map((m) => `${m.toUpperCase()} ${template}`),
      );
    const missing = apiOperations.filter((op) => !covered.has(op) && !NOT_IN_CLIENT[op]);
    expect(missing, 'operations the client lacks (add a method, or a reason to NOT_IN_CLIENT)').toEqual([]);
    for (const op of Object.keys(NOT_IN_CLIENT))
      expect(apiOperations, 'NOT_IN_CLIENT names a gone operation').toContain(op);
  });

  it('talks to the composed sandbox server', async () => {
    const anonymous = createCdssClient({ baseUrl });
    const users = await anonymous.sandbox.users();
    expect(users.length).toBeGreaterThan(0);
    const { access_token } = await anonymous.sandbox.token(users[0]!.id);
    const client = createCdssClient({ baseUrl, getToken: () => access_token });
    const page = await client.patients.search({ limit: 2 });
    expect(Array.isArray(page.items)).toBe(true);
    await expect(createCdssClient({ baseUrl }).patients.search()).rejects.toMatchObject({ status: 401 });
  });
});
