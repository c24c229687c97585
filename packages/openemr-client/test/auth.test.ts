/**
 * Authentication against the emulator over real HTTP: token expiry mid-run (proactive and on 401), one
 * refresh shared by concurrent callers, refresh rotation, authorization code + PKCE, client credentials
 * with an RS384 assertion, dynamic registration with manual enabling, and OpenEMR's 401/403/400 rules.
 */
import { HttpError, ValidationError, oauth2Auth } from '@cdss/core';
import { createTestClock } from '@cdss/core/testing';
import { SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import axios from 'axios';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { smartAuthorize } from '../src/testing.js';
import { startHarness, type Harness } from './contract/harness.js';
import {
  BackendServicesKeys,
  CDSS_SCOPES,
  OpenEmrAuthError,
  OpenEmrOAuth,
  OpenEmrSessionEndedError,
  buildScopes,
  createBackendServicesTokenProvider,
  createOpenEmrClient,
  createPasswordTokenProvider,
  createPkcePair,
  orderPermissions,
  resourceScope,
} from '../src/index.js';

const login = {
  clientId: SEED_CLIENT.clientId,
  clientSecret: SEED_CLIENT.clientSecret,
  username: SEED_ADMIN.username,
  password: SEED_ADMIN.password,
};

let h: Harness | undefined;
afterEach(async () => {
  const unexplained = h?.unexplained() ?? [];
  await h?.close();
  h = undefined;
  // The FHIR and standard-API traffic of these flows is held to the spec too.
  expect(
    unexplained.map(({ exchange, violation }) => `${exchange.method} ${exchange.url}: ${violation.detail}`),
  ).toEqual([]);
});

/**
 * A backend-services client registered with a `jwks_uri` for `system/Patient.rs` and enabled by the
 * administrator (recorded-8.0.0 files 90, 92).
 */
async function backendClient(harness: Harness): Promise<OpenEmrOAuth> {
  const reg = await new OpenEmrOAuth({ baseUrl: harness.baseUrl }).registerClient({
    client_name: 'cdss-backend',
    application_type: 'private',
    redirect_uris: ['https://cdss.example/cb'],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks_uri: 'https://cdss.example/.well-known/jwks.json',
    scope: 'system/Patient.rs',
  });
  harness.engine.enableClient(reg.client_id);
  return new OpenEmrOAuth({ baseUrl: harness.baseUrl, clientId: reg.client_id });
}

describe('scope builder', () => {
  it('orders v2 letters as OpenEMR requires and writes v1 forms', () => {
    expect(orderPermissions('sr')).toBe('rs');
    expect(orderPermissions(['d', 'c', 's', 'u', 'r'])).toBe('cruds');
    expect(() => orderPermissions('rx')).toThrow(ValidationError);
    expect(resourceScope('user', 'patient', 'suc')).toEqual(['user/patient.cus']);
    expect(resourceScope('user', 'Patient', 'crus', 'v1')).toEqual(['user/Patient.read', 'user/Patient.write']);
    expect(buildScopes({ standard: { vital: 'rc' }, offlineAccess: false })).toBe(
      'openid fhirUser api:oemr user/vital.cr',
    );
    expect(buildScopes({ context: 'system', fhir: { Patient: 'rs' }, openid: false })).toBe(
      'api:fhir system/Patient.rs',
    );
  });

  it('CDSS_SCOPES are all granted by OpenEMR to the sandbox client', async () => {
    h = await startHarness({ version: '8.0' });
    const tokens = await new OpenEmrOAuth({
      baseUrl: h.baseUrl,
      clientId: login.clientId,
      clientSecret: login.clientSecret,
    }).passwordGrant({ ...login, scope: CDSS_SCOPES });
    // The answer's `scope` leaves out api:oemr and api:fhir although they are granted (recorded-8.0.0 file 05).
    expect(tokens.scopes.sort()).toEqual(
      CDSS_SCOPES.split(' ')
        .filter((s) => !s.startsWith('api:'))
        .sort(),
    );
    expect(tokens.refreshToken).toBeDefined();
  });

  it('OpenEMR refuses out-of-order v2 letters with invalid_scope, and drops unregistered scopes', async () => {
    h = await startHarness({ version: '8.0' });
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: login.clientId, clientSecret: login.clientSecret });
    const error = await oauth
      .passwordGrant({ ...login, scope: 'openid api:oemr user/patient.sr' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenEmrAuthError);
    expect((error as OpenEmrAuthError).error).toBe('invalid_scope');
    const t = await oauth.passwordGrant({ ...login, scope: 'openid api:oemr user/patient.rs user/insurance.rs' });
    expect(t.scopes).toEqual(['openid', 'user/patient.rs']);
  });
});

describe('token expiry mid-run', () => {
  it('a long paginated read across several expiries makes one refresh per expiry (clock shared: proactive refresh)', async () => {
    const clock = createTestClock();
    h = await startHarness({
      version: '8.0',
      seed: { extraPatients: 250 },
      now: () => clock.now(),
      tokenLifetimes: { accessTokenSeconds: 300 },
    });
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      clock,
      retry: false,
      auth: { kind: 'password', ...login, scope: CDSS_SCOPES },
    });
    const seen = new Set<string>();
    let pages = 0;
    for await (const p of emr.patients.search({}, { pageSize: 20 })) {
      seen.add(p.uuid);
      if (seen.size % 20 === 0) {
        pages++;
        clock.advance(100_000); // 100 s per page
      }
    }
    expect(seen.size).toBe(256);
    expect(pages).toBe(12);
    // 13 requests from t=0 to t=1200 s with 300 s tokens refreshed 30 s early: refreshed at 300, 600, 900, 1200.
    expect(h.engine.stats.tokenRequests).toEqual({ password: 1, refresh_token: 4 });
    expect(h.engine.stats.apiResponses[401]).toBeUndefined();
  });

  it('when only the server knows the token expired, each 401 makes one refresh and the read completes', async () => {
    const serverClock = createTestClock();
    h = await startHarness({
      version: '8.0',
      seed: { extraPatients: 250 },
      now: () => serverClock.now(),
      tokenLifetimes: { accessTokenSeconds: 250 },
    });
    // The client's own clock stands still: it never sees the expiry coming.
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      version: '8.0',
      clock: createTestClock(),
      retry: false,
      auth: { kind: 'password', ...login, scope: CDSS_SCOPES },
    });
    const seen = new Set<string>();
    for await (const p of emr.patients.search({}, { pageSize: 20 })) {
      seen.add(p.uuid);
      if (seen.size % 20 === 0) serverClock.advance(100_000);
    }
    expect(seen.size).toBe(256);
    // Pages at 0..1200 s; the token issued at t expires at t+250: 401s at 300, 600, 900, 1200.
    expect(h.engine.stats.tokenRequests).toEqual({ password: 1, refresh_token: 4 });
    expect(h.engine.stats.apiResponses[401]).toBe(4);
  });

  it('concurrent callers hitting an expired token share one refresh', async () => {
    const serverClock = createTestClock();
    h = await startHarness({
      version: '8.0',
      now: () => serverClock.now(),
      tokenLifetimes: { accessTokenSeconds: 60 },
    });
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      clock: createTestClock(),
      retry: false,
      auth: { kind: 'password', ...login, scope: CDSS_SCOPES },
    });
    const [first] = await emr.patients.list({ lname: 'Rossi' });
    serverClock.advance(61_000);
    const results = await Promise.all(Array.from({ length: 8 }, () => emr.patients.get(first?.uuid ?? '')));
    expect(results.every((p) => p?.uuid === first?.uuid)).toBe(true);
    expect(h.engine.stats.tokenRequests).toEqual({ password: 1, refresh_token: 1 });
  });

  it('the password provider rotates the refresh token and shares one refresh among concurrent fetches', async () => {
    h = await startHarness({ version: '8.0' });
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: login.clientId, clientSecret: login.clientSecret });
    const rotated: string[] = [];
    const provider = createPasswordTokenProvider({
      oauth,
      ...login,
      scope: CDSS_SCOPES,
      onTokens: (t) => rotated.push(t.refreshToken ?? ''),
    });
    await provider.fetchToken();
    const tokens = await Promise.all([provider.fetchToken(), provider.fetchToken(), provider.fetchToken()]);
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    expect(h.engine.stats.tokenRequests).toEqual({ password: 1, refresh_token: 1 });
    expect(rotated).toHaveLength(2);
    expect(rotated[0]).not.toBe(rotated[1]);
    // The first refresh token was rotated away: OpenEMR refuses it now.
    await expect(oauth.refresh(rotated[0] ?? '')).rejects.toBeInstanceOf(OpenEmrAuthError);
    // The provider falls back to logging in again when its refresh token is refused.
    h.engine.store.tables.tokens.filter((t) => t.kind === 'refresh').forEach((t) => (t.revoked = true));
    await provider.fetchToken();
    expect(h.engine.stats.tokenRequests).toEqual({ password: 2, refresh_token: 3 });
  });
});

describe('OAuth2 flows', () => {
  it('authorization code with PKCE, then a refresh-token client', async () => {
    h = await startHarness({ version: '8.0' });
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: login.clientId, clientSecret: login.clientSecret });
    const pkce = createPkcePair();
    const url = oauth.authorizationUrl({
      redirectUri: SEED_CLIENT.redirectUri,
      scope: CDSS_SCOPES,
      state: 's1',
      codeChallenge: pkce.challenge,
      aud: `${h.baseUrl}/apis/default/fhir`,
    });
    const browser = { username: SEED_ADMIN.username, password: SEED_ADMIN.password };
    const { redirect: back, steps } = await smartAuthorize(url, browser);
    expect(steps).toEqual([
      'GET /oauth2/default/authorize',
      'GET /oauth2/default/provider/login',
      'POST /oauth2/default/login',
      'POST /oauth2/default/scope-authorize-confirm',
      'POST /oauth2/default/device/code',
    ]);
    expect(back.searchParams.get('state')).toBe('s1');
    const code = back.searchParams.get('code') ?? '';
    await expect(
      oauth.exchangeCode({ code, redirectUri: SEED_CLIENT.redirectUri, codeVerifier: createPkcePair().verifier }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    const code2 = (await smartAuthorize(url, browser)).redirect.searchParams.get('code') ?? '';
    const tokens = await oauth.exchangeCode({
      code: code2,
      redirectUri: SEED_CLIENT.redirectUri,
      codeVerifier: pkce.verifier,
    });
    expect(tokens.refreshToken).toBeDefined();
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      auth: {
        kind: 'refreshToken',
        clientId: login.clientId,
        clientSecret: login.clientSecret,
        refreshToken: tokens.refreshToken ?? '',
      },
    });
    expect((await emr.patients.list({ lname: 'Okafor' }))[0]?.fname).toBe('James');
  });

  it('dynamic registration: confidential clients with user scopes start disabled until an admin enables them', async () => {
    h = await startHarness({ version: '8.0' });
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl });
    await expect(
      oauth.registerClient({
        client_name: 'cdss',
        redirect_uris: ['https://cdss.example/cb'],
        application_type: 'public',
        scope: 'openid user/patient.rs',
      }),
    ).rejects.toBeInstanceOf(ValidationError);
    const reg = await oauth.registerClient({
      client_name: 'cdss',
      redirect_uris: ['https://cdss.example/cb'],
      scope: CDSS_SCOPES,
      dsi_type: 'predictive',
      contacts: ['it@hospital.example'],
    });
    expect(reg.client_secret).toBeDefined();
    const error = await oauth.passwordGrant({ ...login, scope: CDSS_SCOPES }).catch((e: unknown) => e);
    expect(error).toMatchObject({ error: 'invalid_client' });
    expect(h.engine.enableClient(reg.client_id)).toBe(true);
    const tokens = await oauth.passwordGrant({ ...login, scope: CDSS_SCOPES });
    expect((await oauth.introspect(tokens.accessToken)).active).toBe(true);
    expect((await oauth.introspect('not-a-token')).active).toBe(false);
  });

  it('client credentials with an RS384 assertion reads FHIR; OpenEMR refuses a system token on /api', async () => {
    h = await startHarness({ version: '8.0', systemScopes: true });
    const { privateKey, publicKey } = await generateKeyPair('RS384', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'cdss-1', alg: 'RS384', use: 'sig' };
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl });
    const reg = await oauth.registerClient({
      client_name: 'cdss-backend',
      redirect_uris: ['https://cdss.example/cb'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [jwk] },
      scope: buildScopes({ context: 'system', openid: false, fhir: { Patient: 'rs', Observation: 'rs' } }),
    });
    h.engine.enableClient(reg.client_id);
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      retry: false,
      auth: {
        kind: 'clientCredentials',
        clientId: reg.client_id,
        privateKey,
        kid: 'cdss-1',
        scope: 'api:fhir system/Patient.rs system/Observation.rs',
      },
    });
    const bundle = await emr.fhir.search('Patient', { family: 'Rossi' });
    expect(bundle.entry).toHaveLength(1);
    expect(h.engine.stats.tokenRequests).toEqual({ client_credentials: 1 });
    const error = await emr.patients.get(bundle.entry?.[0]?.resource?.id ?? '').catch((e: unknown) => e);
    expect(HttpError.isInstance(error) && error.status === 401).toBe(true);
  });

  it('a wrong assertion key is refused (400 for assertion problems, recorded-8.0.0 files 94–96)', async () => {
    h = await startHarness({ version: '8.0', systemScopes: true });
    const registered = await generateKeyPair('RS384', { extractable: true });
    const other = await generateKeyPair('RS384');
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl });
    const reg = await oauth.registerClient({
      client_name: 'cdss-backend',
      redirect_uris: ['https://cdss.example/cb'],
      jwks: { keys: [{ ...(await exportJWK(registered.publicKey)), kid: 'k' }] },
      scope: 'api:fhir system/Patient.rs',
    });
    h.engine.enableClient(reg.client_id);
    await expect(
      oauth.clientCredentials({ privateKey: other.privateKey, kid: 'k', scope: 'api:fhir system/Patient.rs' }),
    ).rejects.toMatchObject({ error: 'invalid_client', status: 400 });
  });
});

describe('SMART App Launch and Backend Services, end to end (recorded-8.0.0 files 68–96)', () => {
  const browser = { username: SEED_ADMIN.username, password: SEED_ADMIN.password };

  it('standalone launch of a public app: login, patient picker, scope approval, a PKCE code, the patient in the token', async () => {
    h = await startHarness({ version: '8.0' });
    const fhirBase = `${h.baseUrl}/apis/default/fhir`;
    const reg = await new OpenEmrOAuth({ baseUrl: h.baseUrl }).registerClient({
      client_name: 'viewer',
      application_type: 'public',
      redirect_uris: ['https://viewer.example/cb'],
      scope: 'openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs',
    });
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: reg.client_id });
    const pkce = createPkcePair();
    const url = oauth.authorizationUrl({
      redirectUri: 'https://viewer.example/cb',
      scope: 'openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs',
      state: 'st',
      codeChallenge: pkce.challenge,
      aud: fhirBase,
    });
    const { redirect, steps } = await smartAuthorize(url, {
      ...browser,
      patient: { lname: 'Rossi' },
      approve: (offered) => offered.filter((s) => s !== 'patient/Observation.rs'),
    });
    expect(steps).toContain('POST /oauth2/default/smart/patient-select-confirm');
    const tokens = await oauth.exchangeCode({
      code: redirect.searchParams.get('code') ?? '',
      redirectUri: 'https://viewer.example/cb',
      codeVerifier: pkce.verifier,
    });
    const [maria] = await createOpenEmrClient({
      baseUrl: h.baseUrl,
      auth: { kind: 'password', ...login, scope: CDSS_SCOPES },
    }).patients.list({ lname: 'Rossi' });
    expect(tokens.patient).toBe(maria?.uuid);
    expect(tokens.needPatientBanner).toBe(true);
    expect(tokens.scopes).not.toContain('patient/Observation.rs'); // unchecked on the approval page
    const claims = JSON.parse(Buffer.from((tokens.idToken ?? '').split('.')[1] ?? '', 'base64url').toString()) as {
      fhirUser?: string;
    };
    // An OpenEMR user is a FHIR Person, named by URL (files 77, 86).
    expect(claims.fhirUser).toMatch(/\/apis\/default\/fhir\/Person\/[0-9a-f-]{36}$/);
    const viewer = createOpenEmrClient({ baseUrl: h.baseUrl, auth: { kind: 'bearer', token: tokens.accessToken } });
    expect((await viewer.fhir.read('Patient', maria?.uuid ?? ''))?.id).toBe(maria?.uuid);
  });

  it('EHR launch: the OpenEMR launcher, then the app’s authorize with launch and aud; the token carries patient and intent', async () => {
    h = await startHarness({ version: '8.0' });
    const reg = await new OpenEmrOAuth({ baseUrl: h.baseUrl }).registerClient({
      client_name: 'cdss-launch',
      application_type: 'private',
      redirect_uris: ['https://cdss.example/cb'],
      initiate_login_uri: 'https://cdss.example/launch',
      scope: 'openid fhirUser launch offline_access user/Patient.rs',
    });
    h.engine.enableClient(reg.client_id);
    // The clinician's own OpenEMR session (the core UI), the patient's dashboard, the app's launch link.
    const jar: string[] = [];
    const core = await axios.post(
      `${h.baseUrl}/interface/main/main_screen.php?auth=login&site=default`,
      new URLSearchParams({ authUser: SEED_ADMIN.username, clearPass: SEED_ADMIN.password }).toString(),
      { maxRedirects: 0, validateStatus: () => true, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    );
    jar.push(String(core.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '');
    const dashboard = await axios.get(`${h.baseUrl}/interface/patient_file/summary/demographics.php`, {
      params: { set_pid: 1 },
      headers: { cookie: jar.join('; ') },
    });
    const csrf = /csrf_token=([0-9a-f]+)/.exec(String(dashboard.data))?.[1] ?? '';
    const launcher = await axios.get(`${h.baseUrl}/interface/smart/ehr-launch-client.php`, {
      params: { client_id: reg.client_id, csrf_token: csrf, intent: 'cdss-review' },
      headers: { cookie: jar.join('; ') },
      maxRedirects: 0,
      validateStatus: () => true,
    });
    const launchUrl = new URL(String(launcher.headers['location']));
    expect(launchUrl.origin + launchUrl.pathname).toBe('https://cdss.example/launch');
    const iss = launchUrl.searchParams.get('iss') ?? '';
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: reg.client_id, clientSecret: reg.client_secret });
    const pkce = createPkcePair();
    expect(() =>
      oauth.authorizationUrl({
        redirectUri: 'https://cdss.example/cb',
        scope: 'openid launch',
        state: 's',
        codeChallenge: pkce.challenge,
        launch: launchUrl.searchParams.get('launch') ?? '',
      }),
    ).toThrow(ValidationError); // aud is mandatory with launch
    const url = oauth.authorizationUrl({
      redirectUri: 'https://cdss.example/cb',
      scope: 'openid fhirUser launch offline_access user/Patient.rs',
      state: 's',
      codeChallenge: pkce.challenge,
      launch: launchUrl.searchParams.get('launch') ?? '',
      aud: iss,
    });
    const { redirect } = await smartAuthorize(url, browser);
    const tokens = await oauth.exchangeCode({
      code: redirect.searchParams.get('code') ?? '',
      redirectUri: 'https://cdss.example/cb',
      codeVerifier: pkce.verifier,
    });
    expect(tokens.intent).toBe('cdss-review');
    expect(tokens.patient).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('backend services: a JWKS URL, a key rotation without registering again, 300-second tokens', async () => {
    const keys = await BackendServicesKeys.generate();
    const first = keys.current.kid;
    const served: string[] = [];
    h = await startHarness({
      version: '8.0',
      systemScopes: true,
      fetchJwks: async (url) => {
        served.push(url);
        return keys.jwks();
      },
    });
    const oauth = await backendClient(h);
    const tokens: number[] = [];
    const provider = createBackendServicesTokenProvider({
      oauth,
      keys,
      scope: 'system/Patient.rs',
      onTokens: (t) => tokens.push(Math.round((t.expiresAt - Date.now()) / 1000)),
    });
    const emr = createOpenEmrClient({ baseUrl: h.baseUrl, retry: false, auth: oauth2Auth(provider) });
    expect((await emr.fhir.search('Patient', { family: 'Rossi' })).entry).toHaveLength(1);
    await keys.rotate();
    keys.retire(first);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([keys.current.kid]);
    expect((await provider.fetchToken()).accessToken).toBeDefined(); // signed with the new key, fetched from jwks_uri
    expect(tokens.length).toBe(2);
    for (const seconds of tokens) expect(seconds).toBeGreaterThan(290);
    for (const seconds of tokens) expect(seconds).toBeLessThanOrEqual(300);
    expect(served).toEqual([
      'https://cdss.example/.well-known/jwks.json',
      'https://cdss.example/.well-known/jwks.json',
    ]);
  });

  it('backend services key rotation: both keys verify during the overlap, the retired one is refused after', async () => {
    const keys = await BackendServicesKeys.generate();
    const old = keys.current;
    // OpenEMR fetches the registered jwks_uri on every token request (recorded-8.0.0 file 90): serve the
    // key set as it is at that moment.
    h = await startHarness({ version: '8.0', systemScopes: true, fetchJwks: async () => keys.jwks() });
    const oauth = await backendClient(h);
    const withKey = (key: { privateKey: typeof old.privateKey; kid: string }) =>
      oauth.clientCredentials({ privateKey: key.privateKey, kid: key.kid, scope: 'system/Patient.rs' });
    const provider = createBackendServicesTokenProvider({ oauth, keys, scope: 'system/Patient.rs' });
    const emr = createOpenEmrClient({ baseUrl: h.baseUrl, retry: false, auth: oauth2Auth(provider) });
    expect((await emr.fhir.search('Patient', { family: 'Rossi' })).entry).toHaveLength(1);

    // Rotate: the new key signs from now on; the JWKS publishes both, new first.
    const next = await keys.rotate();
    expect(keys.current.kid).toBe(next.kid);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([next.kid, old.kid]);
    expect(keys.jwks().keys.every((k) => k.d === undefined && k.alg === 'RS384')).toBe(true); // public halves
    // During the overlap an assertion signed with either key gets a token (another instance may not have
    // rotated yet), and the provider signs with the new one.
    expect((await withKey(old)).accessToken).toBeDefined();
    expect((await withKey(next)).accessToken).toBeDefined();
    const token = await provider.fetchToken();
    expect(token.accessToken).toBeDefined();

    // Retire the old key: only the new one is published, and an assertion with the old key is refused.
    expect(() => keys.retire(next.kid)).toThrow(ValidationError); // never the current key
    keys.retire(old.kid);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([next.kid]);
    const refused = await withKey(old).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenEmrAuthError);
    expect([(refused as OpenEmrAuthError).status, (refused as OpenEmrAuthError).error]).toEqual([
      400,
      'invalid_client',
    ]);
    expect((await withKey(next)).accessToken).toBeDefined();
    await expect(keys.rotate(next)).rejects.toBeInstanceOf(ValidationError); // a kid already in the set
  });
});

describe("OpenEMR's auth failure statuses (notes §2.7)", () => {
  it.each(['8.0', '7.0'] as const)(
    '%s: missing resource scope is 401, missing api:oemr is 403 (8) / 401 (7.0)',
    async (version) => {
      h = await startHarness({ version });
      const oauth = new OpenEmrOAuth({
        baseUrl: h.baseUrl,
        clientId: login.clientId,
        clientSecret: login.clientSecret,
      });
      const patient = version === '7.0' ? 'user/patient.read' : 'user/patient.rs';
      const noVital = await oauth.passwordGrant({ ...login, scope: `openid api:oemr ${patient}` });
      const noApi = await oauth.passwordGrant({ ...login, scope: `openid ${patient}` });
      const http = axios.create({ baseURL: `${h.baseUrl}/apis/default/api`, validateStatus: () => true });
      const vitals = await http.get('/patient/1/encounter/1/vital', {
        headers: { authorization: `Bearer ${noVital.accessToken}` },
      });
      expect(vitals.status).toBe(401);
      const patients = await http.get('/patient', { headers: { authorization: `Bearer ${noApi.accessToken}` } });
      expect(patients.status).toBe(version === '8.0' ? 403 : 401);
      const none = await h.badRequests(() => http.get('/patient')); // deliberately without a token
      expect(none.status).toBe(401);
      expect(none.data).toMatchObject(
        version === '8.0'
          ? { message: 'The resource owner or authorization server denied the request.' }
          : { error: 'access_denied' },
      );
      // Logout de-trusts the user: their tokens answer 400, not 401 (the client must log in again).
      const withId = await oauth.passwordGrant({ ...login, scope: `openid api:oemr ${patient}` });
      await axios.get(`${h.baseUrl}/oauth2/default/logout`, { params: { id_token_hint: withId.idToken } });
      const after = await http.get('/patient', { headers: { authorization: `Bearer ${withId.accessToken}` } });
      expect(after.status).toBe(400);
    },
  );

  it('after a logout (400 "revoked or logged out") the client logs in again by itself, or says the session ended', async () => {
    h = await startHarness({ version: '8.0' });
    const idTokens: string[] = [];
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      retry: false,
      auth: { kind: 'password', ...login, scope: CDSS_SCOPES, onTokens: (t) => idTokens.push(t.idToken ?? '') },
    });
    const [maria] = await emr.patients.list({ lname: 'Rossi' });
    await axios.get(`${h.baseUrl}/oauth2/default/logout`, { params: { id_token_hint: idTokens[0] } });
    expect((await emr.patients.get(maria?.uuid ?? ''))?.fname).toBe('Maria');
    expect((await emr.fhir.read('Patient', maria?.uuid ?? ''))?.id).toBe(maria?.uuid);
    expect(h.engine.stats.tokenRequests).toEqual({ password: 2 });

    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: login.clientId, clientSecret: login.clientSecret });
    const tokens = await oauth.passwordGrant({ ...login, scope: CDSS_SCOPES });
    const viaRefresh = createOpenEmrClient({
      baseUrl: h.baseUrl,
      retry: false,
      auth: {
        kind: 'refreshToken',
        clientId: login.clientId,
        clientSecret: login.clientSecret,
        refreshToken: tokens.refreshToken ?? '',
      },
    });
    expect((await viaRefresh.patients.get(maria?.uuid ?? ''))?.fname).toBe('Maria');
    await axios.get(`${h.baseUrl}/oauth2/default/logout`, { params: { id_token_hint: tokens.idToken } });
    await expect(viaRefresh.patients.get(maria?.uuid ?? '')).rejects.toBeInstanceOf(OpenEmrSessionEndedError);
  });

  it('the client surfaces a missing scope as an HttpError 401 after one refresh and one new login', async () => {
    h = await startHarness({ version: '8.0' });
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      retry: false,
      auth: { kind: 'password', ...login, scope: 'openid offline_access api:oemr user/patient.rs' },
    });
    const error = await emr.vitals.list({ pid: 1, eid: 1 }).catch((e: unknown) => e);
    expect(HttpError.isInstance(error) && error.status === 401).toBe(true);
    // 401 → refresh and retry (transport) → 401 → log in again and retry once (client) → 401: HttpError.
    expect(h.engine.stats.tokenRequests).toEqual({ password: 2, refresh_token: 2 });
  });

  it('oauth2Auth from core accepts the provider directly', async () => {
    h = await startHarness({ version: '8.0' });
    const oauth = new OpenEmrOAuth({ baseUrl: h.baseUrl, clientId: login.clientId, clientSecret: login.clientSecret });
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      auth: oauth2Auth(createPasswordTokenProvider({ oauth, ...login, scope: CDSS_SCOPES })),
    });
    expect((await emr.patients.page({}, { limit: 1 })).patients).toHaveLength(1);
  });
});

describe('privacy', () => {
  it('neither tokens nor patient data reach the logger', async () => {
    const lines: string[] = [];
    const record = (obj: object | string, msg?: string): void => void lines.push(JSON.stringify([obj, msg ?? '']));
    const logger = { debug: record, info: record, warn: record, error: record };
    const serverClock = createTestClock();
    h = await startHarness({
      version: '8.0',
      now: () => serverClock.now(),
      tokenLifetimes: { accessTokenSeconds: 60 },
    });
    const tokens: string[] = [];
    const emr = createOpenEmrClient({
      baseUrl: h.baseUrl,
      logger,
      clock: createTestClock(),
      retry: { maxRetries: 1, baseDelayMs: 1 },
      auth: {
        kind: 'password',
        ...login,
        scope: CDSS_SCOPES,
        onTokens: (t) => tokens.push(t.accessToken, t.refreshToken ?? ''),
      },
    });
    const [maria] = await emr.patients.list({ lname: 'Rossi' });
    serverClock.advance(61_000); // forces a 401 and a refresh
    await emr.patients.get(maria?.uuid ?? '');
    await emr.patients.create({ fname: 'Private', lname: 'Person', DOB: '1950-05-05', sex: 'Female' });
    await emr.vitals.list({ pid: 999, eid: 999 }); // a 404
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('\n');
    for (const secret of [...tokens.filter(Boolean), SEED_CLIENT.clientSecret, SEED_ADMIN.password])
      expect(all).not.toContain(secret);
    for (const phi of ['Rossi', 'Maria', 'Private', '1950-05-05']) expect(all).not.toContain(phi);
  });
});
