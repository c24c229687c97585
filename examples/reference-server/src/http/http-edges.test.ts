/**
 * What the server answers outside its routes' own logic, and what its OpenAPI document says about it: 405 with
 * `Allow` for an undeclared method, an OperationOutcome for a request line or headers over Node's limit, required
 * bodies, UUID path parameters, enums, the `Idempotency-Key` header and the bounds of birth dates.
 */
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeArchive, fakeRecords, memoryCache, startHarness, type Harness } from '../test-support.js';
import { patientRoutes } from '../domain/patients.js';
import { sandboxRoutes } from '../domain/sandbox-routes.js';
import { studyRoutes } from '../domain/studies.js';
import { birthDatePattern } from '@cdss/client';

let h: Harness;
beforeAll(async () => {
  h = await startHarness(({ auditor, bus, fhir }) => [
    ...patientRoutes({ records: fakeRecords(), cache: memoryCache(), fhir, bus, auditor }),
    ...studyRoutes({ archive: fakeArchive(), auditor }),
  ]);
});
afterAll(async () => h.close());

interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema: Record<string, unknown> }>;
  requestBody?: { required?: boolean; content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { content?: Record<string, unknown> }>;
}
type Document = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

describe('methods a path does not have', () => {
  it.each(['DELETE', 'PATCH', 'PUT'])('%s on /api/patients answers 405 with Allow', async (method) => {
    const response = await fetch(`${h.baseUrl}/api/patients`, { method });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(response.headers.get('content-type')).toContain('application/fhir+json');
    expect(await response.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'not-supported' }],
    });
  });

  it('lists every method of a path with several routes, and keeps 404 for paths that do not exist', async () => {
    const id = '0b7e8f5e-5c57-4e7d-9a6e-3f1f0d2f5a11';
    const response = await fetch(`${h.baseUrl}/api/patients/${id}`, { method: 'DELETE' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD, PUT');
    expect((await fetch(`${h.baseUrl}/api/nothing-here`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('requests over the HTTP parser’s limits', () => {
  /** Sends raw bytes and reads the whole answer. */
  async function raw(bytes: string): Promise<string> {
    const socket = connect(Number(new URL(h.baseUrl).port), '127.0.0.1');
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write(bytes);
    await once(socket, 'close');
    return Buffer.concat(chunks).toString();
  }

  it('answers 431 with an OperationOutcome for 3,000 query parameters', async () => {
    const query = Array.from({ length: 3000 }, (_, i) => `p${i}=x`).join('&');
    const answer = await raw(`GET /api/patients?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(answer).toContain('Content-Type: application/fhir+json');
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown;
    expect(body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'too-long' }] });
    expect((await fetch(`${h.baseUrl}/healthz`)).status).toBe(200);
  });

  it('answers 400 with an OperationOutcome for a malformed request line', async () => {
    const answer = await raw('GET /healthz HTTP/9.9 what\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('"resourceType":"OperationOutcome"');
  });
});

describe('the OpenAPI document', () => {
  let doc: Document;
  beforeAll(async () => {
    doc = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as Document;
  });

  it('marks request bodies required and declares 429 and 431 as OperationOutcomes on every operation', () => {
    expect(doc.paths['/api/patients']!['post']!.requestBody?.required).toBe(true);
    expect(doc.paths['/api/patients/{id}']!['put']!.requestBody?.required).toBe(true);
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, operation] of Object.entries(item))
        for (const status of ['429', '431'])
          expect(operation.responses[status]?.content, `${method} ${path} ${status}`).toHaveProperty([
            'application/fhir+json',
          ]);
  });

  it('types patient ids as UUIDs, as the server checks them', async () => {
    for (const path of ['/api/patients/{id}', '/api/patients/{id}/studies', '/api/patients/{id}/vitals']) {
      const id = Object.values(doc.paths[path]!)[0]!.parameters!.find((p) => p.name === 'id')!;
      expect(id.schema, path).toMatchObject({ type: 'string', format: 'uuid' });
    }
    const token = await h.token('demo-nurse');
    const response = await fetch(`${h.baseUrl}/api/patients/not-a-uuid`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).not.toContain('puuid');
  });

  it('declares the Idempotency-Key header and its 409/422 answers on patient creation', () => {
    const create = doc.paths['/api/patients']!['post']!;
    expect(create.parameters).toContainEqual(
      expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: false }),
    );
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '409', '422']));
  });

  it("bounds birth dates of patient input by 1900 and today (today's pattern), not those of patients it returns", () => {
    const schemas = doc.components.schemas as Record<string, { properties: Record<string, Record<string, unknown>> }>;
    expect(schemas['PatientInput']!.properties['birthDate']).toMatchObject({
      type: 'string',
      format: 'date',
      pattern: birthDatePattern(),
    });
    expect(schemas['Patient']!.properties['birthDate']!['pattern']).not.toBe(birthDatePattern());
  });
});

describe('the sandbox routes in the document', () => {
  it('require a body and list the demo user ids as an enum', async () => {
    const sandbox = await startHarness(() => sandboxRoutes(h.issuer));
    try {
      const doc = (await (await fetch(`${sandbox.baseUrl}/openapi.json`)).json()) as Document;
      const body = doc.paths['/api/sandbox/token']!['post']!.requestBody!;
      expect(body.required).toBe(true);
      expect(JSON.stringify(body.content)).toContain('"enum":["demo-admin","demo-physician"');
    } finally {
      await sandbox.close();
    }
  });
});
