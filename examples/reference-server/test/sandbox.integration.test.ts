/**
 * The whole CDSS in sandbox mode, composed exactly as `npm start` does (embedded OpenEMR emulator, DICOM store, FHIR
 * server, in-memory jobs, in-process AI worker with the demo model), driven through its public HTTP API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrthancClient } from '@cdss/orthanc-client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { clientFor, runClinicalFlow } from './flow.js';
import { DEMO_USERS } from '../src/auth/tokens.js';
import { ROLES, rolesWith } from '../src/auth/rbac.js';
import { createMessage, encodeMessage, signWebhook } from '@cdss/ai-jobs';
import { freePort } from '@cdss/core/testing';

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-sandbox-'));
const WEBHOOK_SECRET = 'a-webhook-secret-of-at-least-32-characters';
let composed: ComposedServer;
let baseUrl: string;

beforeAll(async () => {
  const config = loadConfig({
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '0',
    CDSS_LOG_LEVEL: 'warn',
    CDSS_RATE_LIMIT_PER_MINUTE: '10000',
    CDSS_WEBHOOK_SECRET: WEBHOOK_SECRET,
  });
  composed = await composeServer(config, createLogger('warn'), 'test');
  baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
}, 120_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('sandbox mode, end to end', () => {
  it('runs the clinical flow from patient creation to the reviewed report', async () => {
    await runClinicalFlow({
      baseUrl,
      fhirUrl: composed.embedded.fhir!,
      orthanc: new OrthancClient({ baseUrl: composed.embedded.orthanc! }),
    });
  }, 240_000);
});

describe('the route table of the composed server', () => {
  const samplePath = (path: string): string =>
    path.replace(/\{(\w+)\}/g, (_m: string, name: string) =>
      name.endsWith('Uid')
        ? '1.2.3'
        : name === 'id' && path.startsWith('/api/analyses')
          ? '00000000-0000-4000-8000-000000000000'
          : 'p-1',
    );

  async function send(
    method: string,
    path: string,
    options: { token?: string; body?: string; headers?: Record<string, string> } = {},
  ) {
    const response = await fetch(`${baseUrl}${path}`, {
      method: method.toUpperCase(),
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      ...(options.body !== undefined ? { body: options.body } : {}),
    });
    const text = await response.text();
    return { status: response.status, text };
  }

  it('answers 401 without a token and 403 for every role the policy denies, on every route', async () => {
    const tokens = new Map<string, string>();
    for (const user of DEMO_USERS) tokens.set(user.role, (await clientFor({ baseUrl }, user.id)).token);
    let checked = 0;
    for (const route of composed.server.routes) {
      const path = samplePath(route.path);
      const body = route.body ? '{}' : undefined;
      if (route.access === 'public') continue;
      if (route.access === 'webhook-signature') {
        const unsigned = await send(route.method, path, { body: '{"type":"analysis.succeeded"}' });
        expect(unsigned.status, `${route.path} unsigned`).toBe(401);
        const forged = await send(route.method, path, {
          body: '{}',
          headers: { 'cdss-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}` },
        });
        expect(forged.status, `${route.path} forged`).toBe(401);
        continue;
      }
      expect(
        (await send(route.method, path, { ...(body ? { body } : {}) })).status,
        `${route.method} ${route.path} without a token`,
      ).toBe(401);
      for (const role of ROLES.filter(
        (r) =>
          !rolesWith(
            route.access === 'public' || route.access === 'webhook-signature' ? 'audit:read' : route.access.permission,
          ).includes(r),
      )) {
        const denied = await send(route.method, path, { token: tokens.get(role)!, ...(body ? { body } : {}) });
        expect(denied.status, `${route.method} ${route.path} as ${role}`).toBe(403);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
    // Only health, metrics, the OpenAPI document and the sandbox's token endpoint answer without a token.
    for (const open of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs'])
      expect((await send('get', open)).status, open).toBeLessThan(400);
  }, 120_000);

  it('answers 400 with an OperationOutcome naming the problem for bad input on every write route, changing nothing', async () => {
    const physician = await clientFor({ baseUrl }, 'demo-physician');
    const radiologist = await clientFor({ baseUrl }, 'demo-radiologist');
    const before = (await physician.client.patients.search({ limit: 100 })).items.length;
    const writes = composed.server.routes.filter((r) => r.body && typeof r.access === 'object');
    expect(writes.length).toBeGreaterThanOrEqual(4);
    for (const route of writes) {
      const token =
        route.access !== 'public' &&
        route.access !== 'webhook-signature' &&
        route.access.permission === 'analysis:review'
          ? radiologist.token
          : physician.token;
      const path = samplePath(route.path);
      for (const [what, body] of [
        ['wrong types', '{"givenName":1,"patientId":2,"decision":3}'],
        ['missing fields', '{}'],
        [
          'unknown fields',
          '{"givenName":"A","familyName":"Bee","birthDate":"1970-01-01","sex":"female","patientId":"p","decision":"approve","surprise":true}',
        ],
        ['not JSON', '{"givenName":'],
      ] as const) {
        const answer = await send(route.method, path, { token, body });
        expect(answer.status, `${route.method} ${route.path} with ${what}`).toBe(400);
        const outcome = JSON.parse(answer.text) as { resourceType: string; issue: Array<{ diagnostics: string }> };
        expect(outcome.resourceType).toBe('OperationOutcome');
        expect(outcome.issue[0]?.diagnostics.length).toBeGreaterThan(3);
      }
      const oversize = await send(route.method, path, {
        token,
        body: JSON.stringify({ givenName: 'x'.repeat(2_000_000) }),
      });
      expect(oversize.status, `${route.method} ${route.path} oversize`).toBe(413);
    }
    expect((await physician.client.patients.search({ limit: 100 })).items.length).toBe(before);
  }, 120_000);
});

describe('the AI webhook', () => {
  const post = async (body: string | Buffer, signature?: string) => {
    const response = await fetch(`${baseUrl}/api/webhooks/ai`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(signature ? { 'cdss-signature': signature } : {}) },
      body,
    });
    return { status: response.status, text: await response.text() };
  };

  it('answers a signed event for an unknown job 404, a replay 409, a forgery 401 and a signed body that is no job event 400', async () => {
    const event = encodeMessage(
      createMessage({
        type: 'analysis.progress',
        jobId: '00000000-0000-4000-8000-000000000001',
        workerId: 'worker-1',
        stage: 'inference',
        percent: 50,
      }),
    );
    const signature = signWebhook(event, WEBHOOK_SECRET);
    // verified, but no such job here (nothing recorded; a 4xx, so the sender does not retry)
    expect((await post(event, signature)).status).toBe(404);
    expect((await post(event, signature)).status, 'the same delivery again').toBe(409);
    expect((await post(event, signWebhook(event, 'another-secret-of-at-least-32-chars'))).status).toBe(401);
    expect((await post(event)).status).toBe(401);

    const wrong = JSON.stringify({ ...JSON.parse(event.toString()), percent: 250 });
    const refused = await post(wrong, signWebhook(wrong, WEBHOOK_SECRET));
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('OperationOutcome');
    expect(refused.text).toContain('percent');
    const notJson = '{"type":';
    expect((await post(notJson, signWebhook(notJson, WEBHOOK_SECRET))).status).toBe(400);
    // No body at all (so no content type): signed over zero bytes it is no event, unsigned it is refused.
    const empty = async (signature?: string) =>
      (
        await fetch(`${baseUrl}/api/webhooks/ai`, {
          method: 'POST',
          headers: signature ? { 'cdss-signature': signature } : {},
        })
      ).status;
    expect(await empty(signWebhook('', WEBHOOK_SECRET))).toBe(400);
    expect(await empty()).toBe(401);
  });
});
