/**
 * SMART sessions: the server's keys and JWKS, the id_token exchange (OpenEMR's recorded id_token shape: `iss`
 * `{site}/oauth2/default`, `aud` the client id, `fhirUser` a `Person/…` URL) and the session token accepted beside the
 * identity provider's tokens.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandboxIssuer } from '../auth/tokens.js';
import { createMemoryJtiStore } from '../cds-hooks/caller-auth.js';
import { startHarness, type Harness } from '../test-support.js';
import { generateServerJwks, loadServerKeys, serverKeysFromJwks, type ServerKeys } from './server-keys.js';
import { jwksRoute, smartRoutes, withSmartSessions, SMART_SESSION_ISSUER } from './session.js';

const dir = mkdtempSync(join(tmpdir(), 'cdss-smart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const EHR = 'http://127.0.0.1:18301/oauth2/default';
const CLIENT = 'zgkpEcijrdOlpd6IttD633oLypZPbjU3QI_z85QNtNc';
const PERSON = 'a365edc2-f923-4d85-8440-7ae649d61119';

describe('server keys', () => {
  it('makes a key once in sandbox mode (0600), publishes only public members, and rotates by order', async () => {
    const file = join(dir, 'keys', 'server-jwks.json');
    const first = await loadServerKeys(file, true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await loadServerKeys(file, true);
    expect(again.current.kid).toBe(first.current.kid);
    expect(first.current.alg).toBe('RS384');
    expect(Object.keys(first.publicJwks.keys[0]!).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    const older = JSON.parse(await generateServerJwks('old')) as { keys: unknown[] };
    const newer = JSON.parse(await generateServerJwks('new')) as { keys: unknown[] };
    const rotated = await serverKeysFromJwks(JSON.stringify({ keys: [...newer.keys, ...older.keys] }));
    expect([rotated.current.kid, rotated.publicJwks.keys.map((k) => k.kid)]).toEqual(['new', ['new', 'old']]);
    expect(await rotated.publicKey('old')).toBeDefined();
    await expect(loadServerKeys(join(dir, 'missing.json'), false)).rejects.toThrow();
    await expect(serverKeysFromJwks('{"keys":[{"kty":"RSA","kid":"x","alg":"RS384"}]}')).rejects.toThrow(
      /private keys/,
    );
  });
});

describe('SMART session exchange', () => {
  let harness: Harness;
  let keys: ServerKeys;
  let ehrKey: CryptoKey;
  const settings = { audience: 'cdss', roleClaim: 'roles' };

  beforeAll(async () => {
    keys = await loadServerKeys(join(dir, 'session-keys.json'), true);
    const pair = await generateKeyPair('RS256');
    ehrKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ehr', alg: 'RS256' };
    harness = await startHarness(() => [
      jwksRoute(keys),
      ...smartRoutes(
        {
          clientId: CLIENT,
          issuer: EHR,
          fhirBaseUrl: 'http://127.0.0.1:18301/apis/default/fhir',
          ehrScope: 'openid fhirUser launch patient/Patient.rs',
          standaloneScope: 'openid fhirUser launch/patient patient/Patient.rs',
          redirectPath: '/smart/callback',
          defaultRole: 'physician',
          userRoles: { [`Person/${PERSON}-r`]: 'radiologist' },
          ...settings,
        },
        keys,
        createMemoryJtiStore(),
        () => createLocalJWKSet({ keys: [jwk] }),
      ),
    ]);
  });
  afterAll(() => harness?.close());

  const idToken = (claims: Record<string, unknown> = {}, aud = CLIENT) =>
    new SignJWT({ fhirUser: `http://127.0.0.1:18301/apis/default/fhir/Person/${PERSON}`, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'ehr' })
      .setIssuer(EHR)
      .setSubject(PERSON)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(ehrKey);
  const exchange = (token: string) =>
    fetch(`${harness.baseUrl}/api/smart/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id_token: token }),
    });

  it('publishes the JWKS and the dashboard’s launch settings', async () => {
    const jwks = (await (await fetch(`${harness.baseUrl}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    expect(jwks).toEqual(keys.publicJwks);
    expect(await (await fetch(`${harness.baseUrl}/api/smart/config`)).json()).toMatchObject({
      clientId: CLIENT,
      redirectPath: '/smart/callback',
    });
  });

  it('opens a session bound to the id_token’s fhirUser, accepted beside the usual tokens, once per id_token', async () => {
    const token = await idToken();
    const response = await exchange(token);
    expect(response.status).toBe(200);
    const session = (await response.json()) as { access_token: string; user: unknown; fhirUser: string };
    expect(session.user).toEqual({ id: `Person/${PERSON}`, name: `Person/${PERSON}`, role: 'physician' });
    const sandbox = createSandboxIssuer({ issuer: 'urn:cdss:sandbox', ...settings });
    const verifier = withSmartSessions(sandbox.verifier, keys, settings);
    expect(await verifier.verify(session.access_token)).toEqual({
      id: `Person/${PERSON}`,
      name: `Person/${PERSON}`,
      roles: ['physician'],
    });
    expect((await verifier.verify((await sandbox.issue('demo-nurse')).accessToken)).roles).toEqual(['nurse']);
    expect((await exchange(token)).status).toBe(401);
  });

  it('verifies a session token once and remembers it until it expires; the primary’s memory is asked first', async () => {
    const session = (await (await exchange(await idToken({ jti: 'remember-me' }))).json()) as { access_token: string };
    const lookups = { count: 0 };
    const counting: ServerKeys = {
      ...keys,
      publicKey: (kid) => {
        lookups.count += 1;
        return keys.publicKey(kid);
      },
    };
    let now = Date.now();
    const sandbox = createSandboxIssuer({ issuer: 'urn:cdss:sandbox', ...settings });
    const verifier = withSmartSessions(sandbox.verifier, counting, settings, { now: () => now });
    expect(verifier.remembered?.(session.access_token)).toBeUndefined();
    for (let i = 0; i < 3; i += 1) expect((await verifier.verify(session.access_token)).id).toBe(`Person/${PERSON}`);
    expect(lookups.count).toBe(1);
    expect(verifier.remembered?.(session.access_token)?.id).toBe(`Person/${PERSON}`);
    // A token the primary verified is answered from the primary's memory.
    const nurse = (await sandbox.issue('demo-nurse')).accessToken;
    await sandbox.verifier.verify(nurse);
    expect(verifier.remembered?.(nurse)?.roles).toEqual(['nurse']);
    // Past the TTL the signature is checked again; past exp the token is refused.
    now += 61_000;
    expect(verifier.remembered?.(session.access_token)).toBeUndefined();
    await verifier.verify(session.access_token);
    expect(lookups.count).toBe(2);
    now += 13 * 3_600_000;
    expect(verifier.remembered?.(session.access_token)).toBeUndefined();
    await expect(verifier.verify(session.access_token)).rejects.toThrow();
  });

  it('takes roles from configuration, and refuses other apps’ tokens, tokens without fhirUser, forgeries', async () => {
    const radiologist = (await (
      await exchange(await idToken({ fhirUser: `Person/${PERSON}-r`, name: 'Dr. Rita' }))
    ).json()) as { user: unknown };
    expect(radiologist.user).toEqual({ id: `Person/${PERSON}-r`, name: 'Dr. Rita', role: 'radiologist' });
    expect((await exchange(await idToken({}, 'another-app'))).status).toBe(401);
    expect((await exchange(await idToken({ fhirUser: undefined }))).status).toBe(401);
    const stranger = await generateKeyPair('RS384');
    const forged = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'RS384', kid: keys.current.kid })
      .setIssuer(SMART_SESSION_ISSUER)
      .setSubject('Person/x')
      .setAudience('cdss')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(stranger.privateKey);
    const verifier = withSmartSessions(
      createSandboxIssuer({ issuer: 'urn:cdss:sandbox', ...settings }).verifier,
      keys,
      settings,
    );
    await expect(verifier.verify(forged)).rejects.toThrow();
  });
});
