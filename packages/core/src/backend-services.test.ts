/**
 * SMART Backend Services: the client assertion as the specification words it, and the token provider against a
 * real node:http token endpoint on 127.0.0.1 that verifies the assertion with the client's public key.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet, type JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { oauth2Auth, type AuthRequest } from './auth.js';
import { createSmartBackendServicesTokenProvider, signClientAssertion } from './backend-services.js';
import { HttpError, ValidationError } from './errors.js';
import { createTestClock } from './testing/clock.js';
import { listenOnFreePort } from './testing/ports.js';

const rsa = await generateKeyPair('RS384', { extractable: true });
const ec = await generateKeyPair('ES384', { extractable: true });
const publicJwks = {
  keys: [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS384' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES384' },
  ] as JWK[],
};
const keys = { current: { kid: 'rsa-1', privateKey: rsa.privateKey } };

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let handler: Handler;
let requests: Array<{ method: string; url: string; body: string }> = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', body });
      handler(req, body, res);
    });
  });
  await listenOnFreePort(server);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
});
beforeEach(() => {
  requests = [];
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** A token endpoint that verifies the assertion with the client's JWKS, as a SMART server must. */
const tokenEndpoint =
  (lifetime = 300): Handler =>
  (req, body, res) => {
    const form = new URLSearchParams(body);
    const audience = `${base}${req.url}`;
    jwtVerify(form.get('client_assertion') ?? '', createLocalJWKSet(publicJwks), {
      issuer: 'cdss-backend',
      subject: 'cdss-backend',
      audience,
      algorithms: ['RS384', 'ES384'],
      requiredClaims: ['jti', 'exp'],
    }).then(
      () => json(res, 200, { access_token: `token-${requests.length}`, token_type: 'bearer', expires_in: lifetime }),
      () => json(res, 400, { error: 'invalid_client', error_description: 'assertion refused' }),
    );
  };

describe('signClientAssertion', () => {
  it('signs the header and claims SMART Backend Services asks for, with a fresh jti each time', async () => {
    const clock = createTestClock(Date.UTC(2026, 11, 6, 12));
    const input = { clientId: 'c1', audience: 'https://auth.example/token', key: keys.current, clock };
    const [a, b] = await Promise.all([signClientAssertion(input), signClientAssertion(input)]);
    expect(decodeProtectedHeader(a)).toEqual({ alg: 'RS384', kid: 'rsa-1', typ: 'JWT' });
    const { payload } = await jwtVerify(a, createLocalJWKSet(publicJwks), {
      currentDate: new Date(clock.now()),
      audience: 'https://auth.example/token',
    });
    expect(payload).toMatchObject({ iss: 'c1', sub: 'c1', aud: 'https://auth.example/token' });
    expect(payload.exp! - payload.iat!).toBe(240);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    const other = await jwtVerify(b, createLocalJWKSet(publicJwks), { currentDate: new Date(clock.now()) });
    expect(other.payload.jti).not.toBe(payload.jti);
  });

  it('signs ES384 and names a jku when asked', async () => {
    const jwt = await signClientAssertion({
      clientId: 'c1',
      audience: 'https://auth.example/token',
      key: { kid: 'ec-1', privateKey: ec.privateKey, alg: 'ES384' },
      jku: 'https://cdss.example/.well-known/jwks.json',
    });
    expect(decodeProtectedHeader(jwt)).toMatchObject({
      alg: 'ES384',
      jku: 'https://cdss.example/.well-known/jwks.json',
    });
    await expect(jwtVerify(jwt, createLocalJWKSet(publicJwks))).resolves.toBeDefined();
  });

  it('refuses algorithms and lifetimes the specification does not allow, before signing', async () => {
    const base = { clientId: 'c1', audience: 'https://auth.example/token' };
    await expect(
      signClientAssertion({ ...base, key: { kid: 'k', privateKey: rsa.privateKey, alg: 'RS256' } }),
    ).rejects.toThrow(ValidationError);
    await expect(signClientAssertion({ ...base, key: keys.current, lifetimeSeconds: 301 })).rejects.toThrow(
      /key\.alg|lifetimeSeconds/,
    );
    await expect(signClientAssertion({ ...base, audience: 'not a url', key: keys.current })).rejects.toThrow(
      /audience/,
    );
  });
});

describe('createSmartBackendServicesTokenProvider', () => {
  it('gets a token with client credentials and a verified assertion; concurrent callers share one request', async () => {
    handler = tokenEndpoint();
    const clock = createTestClock(Date.now());
    const provider = createSmartBackendServicesTokenProvider({
      clientId: 'cdss-backend',
      keys,
      scope: ['system/Patient.rs', 'system/Observation.cruds'],
      tokenEndpoint: `${base}/auth/token`,
      clock,
    });
    const [a, b] = await Promise.all([provider.fetchToken(), provider.fetchToken()]);
    expect(a).toEqual({ accessToken: 'token-1', expiresAt: clock.now() + 300_000 });
    expect(b).toBe(a);
    expect(requests).toHaveLength(1);
    const form = new URLSearchParams(requests[0]!.body);
    expect(Object.fromEntries([...form.keys()].map((k) => [k, k === 'client_assertion' ? '…' : form.get(k)]))).toEqual({
      grant_type: 'client_credentials',
      scope: 'system/Patient.rs system/Observation.cruds',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: '…',
    });
  });

  it('discovers the token endpoint from the FHIR server’s SMART configuration once', async () => {
    handler = (req, body, res) => {
      if (req.url === '/fhir/.well-known/smart-configuration')
        json(res, 200, {
          token_endpoint: `${base}/oauth/token`,
          token_endpoint_auth_methods_supported: ['private_key_jwt'],
          token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
          grant_types_supported: ['client_credentials', 'authorization_code'],
        });
      else tokenEndpoint()(req, body, res);
    };
    const provider = createSmartBackendServicesTokenProvider({
      clientId: 'cdss-backend',
      keys,
      scope: 'system/*.rs',
      fhirBaseUrl: `${base}/fhir/`,
    });
    await provider.fetchToken();
    await provider.fetchToken();
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /fhir/.well-known/smart-configuration',
      'POST /oauth/token',
      'POST /oauth/token',
    ]);
  });

  it('refuses a server whose SMART configuration offers no private_key_jwt or not the key’s algorithm', async () => {
    handler = (_req, _body, res) =>
      json(res, 200, {
        token_endpoint: `${base}/oauth/token`,
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        token_endpoint_auth_signing_alg_values_supported: ['RS256'],
      });
    const provider = createSmartBackendServicesTokenProvider({
      clientId: 'cdss-backend',
      keys,
      scope: 'system/*.rs',
      fhirBaseUrl: `${base}/fhir`,
    });
    const error = await provider.fetchToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.message)).toEqual([
      'token_endpoint_auth_methods_supported lacks private_key_jwt',
      'token_endpoint_auth_signing_alg_values_supported lacks RS384',
    ]);
    expect(requests.every((r) => r.method === 'GET')).toBe(true);
  });

  it('names the OAuth2 error when the server refuses the assertion (wrong key)', async () => {
    handler = tokenEndpoint();
    const stranger = await generateKeyPair('RS384');
    const provider = createSmartBackendServicesTokenProvider({
      clientId: 'cdss-backend',
      keys: { current: { kid: 'rsa-1', privateKey: stranger.privateKey } },
      scope: 'system/*.rs',
      tokenEndpoint: `${base}/auth/token`,
    });
    const error = await provider.fetchToken().catch((e: unknown) => e);
    expect(HttpError.isInstance(error)).toBe(true);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).message).toMatch(/400 invalid_client: assertion refused/);
  });

  it('with oauth2Auth, a 401 gets a new token with a new assertion', async () => {
    handler = tokenEndpoint();
    const auth = oauth2Auth(
      createSmartBackendServicesTokenProvider({
        clientId: 'cdss-backend',
        keys,
        scope: 'system/*.rs',
        tokenEndpoint: `${base}/auth/token`,
      }),
    );
    const first: AuthRequest = { method: 'GET', url: 'http://fhir/Patient', headers: {} };
    await auth.authorize(first);
    expect(await auth.onUnauthorized?.(first)).toBe(true);
    const second: AuthRequest = { method: 'GET', url: 'http://fhir/Patient', headers: {} };
    await auth.authorize(second);
    expect(first.headers['authorization']).toBe('Bearer token-1');
    expect(second.headers['authorization']).toBe('Bearer token-2');
    const jtis = requests.map(
      (r) =>
        JSON.parse(
          Buffer.from(new URLSearchParams(r.body).get('client_assertion')!.split('.')[1]!, 'base64url').toString(),
        ).jti,
    );
    expect(new Set(jtis).size).toBe(2);
  });

  it('refuses options without a token endpoint or FHIR base at once', () => {
    expect(() => createSmartBackendServicesTokenProvider({ clientId: 'c', keys, scope: 'system/*.rs' })).toThrow(
      /tokenEndpoint/,
    );
    expect(() =>
      createSmartBackendServicesTokenProvider({ clientId: '', keys, scope: ' ', tokenEndpoint: `${base}/t` }),
    ).toThrow(/clientId/);
  });
});
