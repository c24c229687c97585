/**
 * What an integrator tries right after `npm start` (sandbox mode on a fixed loopback port): a signed CDS Hooks call
 * of the demo CDS Client answered by the service's real caller authentication, and a SMART launch of the dashboard
 * from the embedded OpenEMR, where the dashboard and the server are registered at start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPkcePair, OpenEmrOAuth } from '@cdss/openemr-client';
import { smartAuthorize } from '@cdss/openemr-client/testing';
import { SEED_ADMIN } from '@cdss/sandbox';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { clientFor } from './flow.js';
import { freePort } from './processes.js';

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-sandbox-ehr-'));
let composed: ComposedServer | undefined;
let baseUrl: string;
let port: number;

const start = async (): Promise<ComposedServer> => {
  const config = loadConfig({
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '0',
    CDSS_WORKER: 'off',
    CDSS_LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
  });
  const server = await composeServer(config, createLogger('warn'), 'test');
  await server.server.listen(port, '127.0.0.1');
  return server;
};

beforeAll(async () => {
  port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  composed = await start();
}, 120_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface PreparedCall {
  url: string;
  authorization: string;
  request: { prefetch: Record<string, { resourceType: string }>; context: { patientId: string } };
}

async function firstPatientId(): Promise<string> {
  const { token } = await clientFor({ baseUrl }, 'demo-physician');
  const page = (await (
    await fetch(`${baseUrl}/api/patients?limit=1`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as { items: Array<{ id: string }> };
  return page.items[0]!.id;
}

describe('CDS Hooks on a fresh sandbox', () => {
  const prepare = async (patientId: string): Promise<PreparedCall> => {
    const res = await fetch(`${baseUrl}/api/sandbox/cds-hooks/patient-view`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ patientId }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as PreparedCall;
  };
  const send = (call: PreparedCall, authorization?: string): Promise<Response> =>
    fetch(call.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify(call.request),
    });

  it('answers the demo CDS Client’s signed patient-view call, with the prefetch read from OpenEMR', async () => {
    const call = await prepare(await firstPatientId());
    expect(call.url).toBe(`${baseUrl}/cds-services/cdss-tumour-status`);
    // Read with the server's backend-services client, registered in the emulator at start.
    expect(call.request.prefetch['patient']?.resourceType).toBe('Patient');
    expect(call.request.prefetch['conditions']?.resourceType).toBe('Bundle');
    const answer = await send(call, call.authorization);
    expect(answer.status).toBe(200);
    expect(Array.isArray(((await answer.json()) as { cards: unknown[] }).cards)).toBe(true);
  });

  it('still refuses a replayed JWT, a call without one, and a JWT for another service URL', async () => {
    const call = await prepare(await firstPatientId());
    expect((await send(call, call.authorization)).status).toBe(200);
    expect((await send(call, call.authorization)).status).toBe(401);
    expect((await send(call)).status).toBe(401);
    const other = await prepare(call.request.context.patientId);
    const wrongUrl = other.url.replace(/\/cds-services\/.*/, '/cds-services/cdss-brain-mri-protocol');
    const res = await fetch(wrongUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: other.authorization },
      body: JSON.stringify({ ...other.request, hook: 'order-select' }),
    });
    expect(res.status).toBe(401);
  });
});

describe('SMART launch of the dashboard from the sandbox’s OpenEMR', () => {
  it('registers the dashboard, whose standalone launch opens a CDSS session for the OpenEMR user', async () => {
    const config = (await (await fetch(`${baseUrl}/api/smart/config`)).json()) as {
      clientId: string;
      fhirBaseUrl: string;
      standaloneScope: string;
      redirectPath: string;
    };
    expect(config.fhirBaseUrl).toBe(`${composed!.embedded.openemr}/apis/default/fhir`);
    const oauth = new OpenEmrOAuth({ baseUrl: composed!.embedded.openemr!, clientId: config.clientId });
    const pkce = createPkcePair();
    const redirectUri = `${baseUrl}${config.redirectPath}`;
    const { redirect } = await smartAuthorize(
      oauth.authorizationUrl({
        redirectUri,
        scope: config.standaloneScope,
        state: 'state-1',
        codeChallenge: pkce.challenge,
        aud: config.fhirBaseUrl,
      }),
      { username: SEED_ADMIN.username, password: SEED_ADMIN.password, patient: { uuid: await firstPatientId() } },
    );
    expect(`${redirect.origin}${redirect.pathname}`).toBe(redirectUri);
    const tokens = await oauth.exchangeCode({
      code: redirect.searchParams.get('code')!,
      redirectUri,
      codeVerifier: pkce.verifier,
    });
    expect(tokens.patient).toBeDefined();
    const session = await fetch(`${baseUrl}/api/smart/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id_token: tokens.idToken }),
    });
    expect(session.status).toBe(200);
  });

  it('finds its registrations again after a restart', async () => {
    const before = (await (await fetch(`${baseUrl}/api/smart/config`)).json()) as { clientId: string };
    await composed!.close();
    composed = undefined;
    composed = await start();
    const after = (await (await fetch(`${baseUrl}/api/smart/config`)).json()) as { clientId: string };
    expect(after.clientId).toBe(before.clientId);
  }, 120_000);
});
