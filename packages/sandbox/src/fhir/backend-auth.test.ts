/**
 * The embedded FHIR server protected by SMART Backend Services: its token endpoint holds client assertions to the
 * specification's verification steps (each refusal below is one of them), and FHIR requests need a token whose
 * scopes cover them. Keys come from a JWKS URL served on 127.0.0.1, so a rotation is seen as the client makes it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSmartBackendServicesTokenProvider } from '@cdss/core';
import { createEmbeddedFhirServer, type EmbeddedFhirServer } from './server.js';
import { freePort, listenOnFreePort } from '@cdss/core/testing';

interface Key {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}
async function newKey(kid: string, alg: 'RS384' | 'ES384' | 'RS256' = 'RS384'): Promise<Key> {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg } };
}

describe('embedded FHIR server with SMART Backend Services', () => {
  let published: Key[] = [];
  let jwksServer: Server;
  let jwksUrl: string;
  let fhir: EmbeddedFhirServer;
  let listening: { url: string; close(): Promise<void> };
  let tokenUrl: string;
  let first: Key;
  /** The same kid, but an RS256 key (the algorithm SMART does not allow). */
  let rs256: Key;

  beforeAll(async () => {
    first = await newKey('k1');
    rs256 = await newKey('k1', 'RS256');
    published = [first];
    jwksServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: published.map((k) => k.publicJwk) }));
    });
    await listenOnFreePort(jwksServer);
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    fhir = createEmbeddedFhirServer({
      backendServices: {
        clients: [
          { clientId: 'cdss', jwksUrl, scope: 'system/Patient.cruds system/Observation.rs' },
          { clientId: 'reader', jwks: { keys: [first.publicJwk] }, scope: 'system/*.read' },
        ],
      },
    });
    listening = await fhir.listen(await freePort());
    tokenUrl = `${new URL(listening.url).origin}/auth/token`;
  });

  afterAll(async () => {
    await listening?.close();
    await new Promise((ok) => jwksServer?.close(ok));
  });

  /** An assertion with the given overrides (a valid one by default). */
  async function assertion(
    overrides: {
      key?: Key;
      alg?: string;
      kid?: string;
      typ?: string;
      jku?: string;
      iss?: string;
      sub?: string;
      aud?: string;
      expIn?: number;
      jti?: string;
    } = {},
  ): Promise<string> {
    const key = overrides.key ?? (overrides.alg === 'RS256' ? rs256 : first);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: overrides.jti ?? randomUUID() })
      .setProtectedHeader({
        alg: overrides.alg ?? 'RS384',
        kid: overrides.kid ?? key.kid,
        typ: overrides.typ ?? 'JWT',
        ...(overrides.jku ? { jku: overrides.jku } : {}),
      })
      .setIssuer(overrides.iss ?? 'cdss')
      .setSubject(overrides.sub ?? overrides.iss ?? 'cdss')
      .setAudience(overrides.aud ?? tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + (overrides.expIn ?? 240))
      .sign(key.privateKey);
  }

  async function tokenRequest(
    jwt: string,
    scope = 'system/Patient.rs',
  ): Promise<{ status: number; body: Record<string, string> }> {
    const response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: jwt,
      }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  const fhirRequest = (path: string, token?: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${listening.url}/${path}`, {
      ...init,
      headers: {
        'content-type': 'application/fhir+json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(init.headers as Record<string, string> | undefined),
      },
    });

  it('announces the token endpoint in its SMART configuration; metadata stays public', async () => {
    const config = (await (await fetch(`${listening.url}/.well-known/smart-configuration`)).json()) as Record<
      string,
      unknown
    >;
    expect(config).toMatchObject({
      token_endpoint: tokenUrl,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    });
    expect((await fhirRequest('metadata')).status).toBe(200);
  });

  it('issues a 300-second token for a verified assertion, granting only what the client may have', async () => {
    const { status, body } = await tokenRequest(await assertion(), 'system/Patient.rs system/Condition.rs');
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/Patient.rs' });
    expect(body['refresh_token']).toBeUndefined();
  });

  it.each([
    ['a wrong aud', { aud: 'http://127.0.0.1/elsewhere/token' }, /aud/],
    ['an expired assertion', { expIn: -60 }, /expired/],
    ['an exp over five minutes ahead', { expIn: 600 }, /five minutes/],
    ['sub other than iss', { sub: 'someone-else' }, /sub/],
    ['an unregistered iss', { iss: 'intruder' }, /not a registered client/],
    ['RS256', { alg: 'RS256' }, /RS384 or ES384/],
    ['typ other than JWT', { typ: 'at+jwt' }, /typ/],
    ['an unknown kid', { kid: 'k-unknown' }, /kid/],
    ['a jku that is not the registered JWKS URL', { jku: 'http://127.0.0.1:1/evil.json' }, /jku/],
  ] as const)('refuses %s with invalid_client', async (_what, overrides, reason) => {
    const { status, body } = await tokenRequest(await assertion(overrides));
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_client');
    expect(body['error_description']).toMatch(reason);
  });

  it('refuses a signature by a key that is not the client’s, and a reused jti', async () => {
    const impostor = await newKey('k1');
    expect((await tokenRequest(await assertion({ key: impostor }))).body['error_description']).toMatch(/signature/);
    const jti = randomUUID();
    expect((await tokenRequest(await assertion({ jti }))).status).toBe(200);
    const replay = await tokenRequest(await assertion({ jti }));
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_client', error_description: /jti/ } });
  });

  it('refuses other grants, assertion types and scopes it may not grant', async () => {
    const wrongGrant = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=a&password=b',
    });
    expect(wrongGrant.status).toBe(400);
    expect(((await wrongGrant.json()) as { error: string }).error).toBe('unsupported_grant_type');
    expect((await tokenRequest(await assertion(), 'system/Condition.rs')).body['error']).toBe('invalid_scope');
  });

  it('answers FHIR requests only with a token whose scopes cover them', async () => {
    expect((await fhirRequest('Patient')).status).toBe(401);
    const noToken = await fhirRequest('Patient');
    expect(noToken.headers.get('www-authenticate')).toMatch(/^Bearer realm="fhir"/);
    expect((await fhirRequest('Patient', 'not-a-token')).headers.get('www-authenticate')).toMatch(/invalid_token/);

    const { body } = await tokenRequest(await assertion(), 'system/Patient.cruds system/Observation.rs');
    const token = body['access_token']!;
    const patient = { resourceType: 'Patient', name: [{ family: 'Scope' }] };
    const created = await fhirRequest('Patient', token, { method: 'POST', body: JSON.stringify(patient) });
    expect(created.status).toBe(201);
    expect((await fhirRequest('Observation?_count=1', token)).status).toBe(200);
    const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
    const forbidden = await fhirRequest('Observation', token, { method: 'POST', body: JSON.stringify(observation) });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('www-authenticate')).toMatch(/insufficient_scope/);
    // A transaction is checked entry by entry.
    const bundle = (entries: unknown[]): RequestInit => ({
      method: 'POST',
      body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }),
    });
    const patientEntry = { resource: patient, request: { method: 'POST', url: 'Patient' } };
    const observationEntry = { resource: observation, request: { method: 'POST', url: 'Observation' } };
    expect((await fhirRequest('', token, bundle([patientEntry]))).status).toBe(200);
    expect((await fhirRequest('', token, bundle([patientEntry, observationEntry]))).status).toBe(403);
  });

  it('accepts v1 scopes and inline JWKS registrations', async () => {
    const { status, body } = await tokenRequest(await assertion({ iss: 'reader' }), 'system/Patient.read');
    expect(status).toBe(200);
    expect((await fhirRequest('Patient', body['access_token'])).status).toBe(200);
    expect(
      (await fhirRequest('Patient', body['access_token'], { method: 'POST', body: '{"resourceType":"Patient"}' }))
        .status,
    ).toBe(403);
  });

  it('a revoked token answers 401, and core’s provider gets a new one', async () => {
    const provider = createSmartBackendServicesTokenProvider({
      clientId: 'cdss',
      keys: { current: first },
      scope: 'system/Patient.rs',
      fhirBaseUrl: listening.url,
    });
    const token = (await provider.fetchToken()).accessToken;
    expect((await fhirRequest('Patient', token)).status).toBe(200);
    fhir.backendAuth!.revokeTokens();
    expect((await fhirRequest('Patient', token)).status).toBe(401);
    expect((await fhirRequest('Patient', (await provider.fetchToken()).accessToken)).status).toBe(200);
  });

  it('key rotation through the client’s JWKS URL: a new kid verifies at once, a retired one no more', async () => {
    const second = await newKey('k2');
    published = [second, first];
    const keys = { current: second as Key };
    const provider = createSmartBackendServicesTokenProvider({
      clientId: 'cdss',
      keys,
      scope: 'system/Patient.rs',
      tokenEndpoint: tokenUrl,
    });
    await expect(provider.fetchToken()).resolves.toMatchObject({ accessToken: expect.any(String) });
    published = [second];
    const retired = await tokenRequest(await assertion({ key: first }));
    expect(retired).toMatchObject({ status: 400, body: { error: 'invalid_client' } });
    await expect(provider.fetchToken()).resolves.toMatchObject({ accessToken: expect.any(String) });
  });
});
