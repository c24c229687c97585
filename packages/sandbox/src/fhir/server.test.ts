import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { createEmbeddedFhirServer } from './server.js';
import { freePort } from '@cdss/core/testing';

let url = '';
let close: () => Promise<void> = async () => undefined;
beforeAll(async () => {
  ({ url, close } = await createEmbeddedFhirServer({ defaultPageSize: 2 }).listen(await freePort()));
});
afterAll(async () => close());

const json = { 'content-type': 'application/fhir+json' };
const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${url}/${path}`, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('embedded FHIR R4 server', () => {
  it('rejects invalid options with a ValidationError', () => {
    expect(() => createEmbeddedFhirServer({ basePath: 'no-slash' })).toThrow(ValidationError);
  });

  it('serves a CapabilityStatement at /metadata', async () => {
    const res = await fetch(`${url}/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    expect(await res.json()).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
  });

  it('creates with Location and ETag, and honours If-None-Exist', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:t', value: 'a' }] };
    const res = await post('Patient', body, { 'if-none-exist': 'identifier=urn:t|a' });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; meta: { versionId: string } };
    expect(res.headers.get('location')).toBe(`${url}/Patient/${created.id}/_history/${created.meta.versionId}`);
    expect(res.headers.get('etag')).toBe(`W/"${created.meta.versionId}"`);
    const again = await post('Patient', body, { 'if-none-exist': 'identifier=urn:t|a' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(created.id);
  });

  it('rejects an invalid resource, malformed JSON and an invalid transaction entry with 400 OperationOutcomes, storing nothing', async () => {
    const bad = await post('Patient', {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:t', value: 'bad' }],
      birthDate: 'yesterday',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error' }] });
    const malformed = await post('Patient', '{"resourceType":');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const tx = await post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { resourceType: 'Patient', identifier: [{ system: 'urn:t', value: 'tx' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        { resource: { resourceType: 'Patient', active: 'yes' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(tx.status).toBe(400);
    const txOutcome = (await tx.json()) as { issue: { severity: string; diagnostics?: string }[] };
    expect(txOutcome.issue.length).toBeGreaterThan(0);
    // every issue is an error naming the entry it is about (the valid entry 0 has none)
    for (const issue of txOutcome.issue) {
      expect(issue.severity).toBe('error');
      expect(issue.diagnostics).toMatch(/^entry\[1\]: ./);
    }
    const found = (await (await fetch(`${url}/Patient?identifier=urn:t|tx`)).json()) as { total: number };
    expect(found.total).toBe(0);
  });

  it('answers $validate with the issues', async () => {
    const ok = (await (await post('Patient/$validate', { resourceType: 'Patient', gender: 'male' })).json()) as {
      issue: { severity: string }[];
    };
    expect(ok.issue.every((i) => i.severity !== 'error')).toBe(true);
    const bad = (await (await post('Patient/$validate', { resourceType: 'Patient', birthDate: 'x' })).json()) as {
      issue: { severity: string }[];
    };
    expect(bad.issue.some((i) => i.severity === 'error')).toBe(true);
  });

  it('pages searches with _count/_offset next links', async () => {
    for (let i = 0; i < 5; i++) await post('Patient', { resourceType: 'Patient', name: [{ family: 'Pager' }] });
    let next: string | undefined = `${url}/Patient?family=Pager`;
    const ids: string[] = [];
    while (next) {
      const page = (await (await fetch(next)).json()) as {
        entry?: { resource: { id: string } }[];
        link: { relation: string; url: string }[];
      };
      ids.push(...(page.entry ?? []).map((e) => e.resource.id));
      next = page.link.find((l) => l.relation === 'next')?.url;
    }
    expect(ids).toHaveLength(5);
    expect(new Set(ids).size).toBe(5);
  });

  it('rejects a stale If-Match with 412', async () => {
    const created = (await (await post('Patient', { resourceType: 'Patient' })).json()) as {
      id: string;
      meta: { versionId: string };
    };
    const put = (version: string): Promise<Response> =>
      fetch(`${url}/Patient/${created.id}`, {
        method: 'PUT',
        headers: { ...json, 'if-match': `W/"${version}"` },
        body: JSON.stringify({ resourceType: 'Patient', id: created.id, active: true }),
      });
    expect((await put(created.meta.versionId)).status).toBe(200);
    expect((await put(created.meta.versionId)).status).toBe(412);
  });

  it('leaves the resources out of a batch-response for Prefer: return=minimal, and only then', async () => {
    const batch = (id: string) => ({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: { resourceType: 'Basic', id, code: { text: 'x' } },
          request: { method: 'PUT', url: `Basic/${id}` },
        },
        { resource: { resourceType: 'Basic' }, request: { method: 'PUT', url: 'Basic/other-id' } },
      ],
    });
    type Entry = { resource?: { id: string }; response: { status: string; outcome?: unknown } };
    const full = (await (await post('', batch('prefer-full'))).json()) as { type: string; entry: Entry[] };
    expect(full.type).toBe('batch-response');
    expect(full.entry[0]?.resource?.id).toBe('prefer-full');

    const res = await post('', batch('prefer-minimal'), { prefer: 'handling=lenient, return=minimal' });
    expect(res.status).toBe(200);
    const minimal = (await res.json()) as { type: string; entry: Entry[] };
    expect(minimal.type).toBe('batch-response');
    expect(minimal.entry.map((e) => Object.keys(e))).toEqual([['response'], ['response']]);
    expect(minimal.entry[0]?.response.status).toMatch(/^20[01]/);
    // A failed entry keeps its status and OperationOutcome.
    expect(minimal.entry[1]?.response.status).toMatch(/^4/);
    expect(minimal.entry[1]?.response.outcome).toMatchObject({ resourceType: 'OperationOutcome' });
    // The write itself happened.
    expect((await fetch(`${url}/Basic/prefer-minimal`)).status).toBe(200);
  });
});
