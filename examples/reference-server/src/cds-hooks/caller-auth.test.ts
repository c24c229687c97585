/**
 * Caller authentication: the specification's own signed JWT example, then each way a JWT can be refused.
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import { CdsAuthError, createCdsCallerVerifier, createMemoryJtiStore, type TrustedClient } from './caller-auth.js';

const spec = JSON.parse(readFileSync(new URL('./__fixtures__/spec-2.0-examples.json', import.meta.url), 'utf8')) as {
  examples: Array<{ section: string; example: Record<string, unknown> }>;
};

/** The example JWT of § Trusting CDS Clients, exactly as the specification prints it (header, payload, signature). */
const SPEC_JWT =
  'eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6ImV4YW1wbGUta2lkIiwiamt1IjoiaHR0cHM6Ly9maGlyLWVoci5leGFtcGxlLmNvbS9qd2tfdXJpIn0.eyJpc3MiOiJodHRwczovL2ZoaXItZWhyLmV4YW1wbGUuY29tLyIsImF1ZCI6Imh0dHBzOi8vY2RzLmV4YW1wbGUub3JnL2Nkcy1zZXJ2aWNlcy9zb21lLXNlcnZpY2UiLCJleHAiOjE0MjI1Njg4NjAsImlhdCI6MTMxMTI4MDk3MCwianRpIjoiZWUyMmIwMjEtZTFiNy00NjExLWJhNWItOGVlYzZhMzNhYzFlIiwidGVuYW50IjoiMmRkZDZjM2EtOGU5YS00NGM2LWEzMDUtNTIxMTFhZDMwMmEyIn0.d1WfLjGRKlcWB94l9do4cM8REXeYJLL6SGUBO8VHZhfM8mwKYP70EMxJ67War4TQblEpaQrp11wx5p7oPFm2ETYgCicS84vXWEIYTdjooZdooCSDf2L8-i4awdoUwiEb';

const reason = async (promise: Promise<unknown>): Promise<string> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CdsAuthError);
  return (error as CdsAuthError).reason;
};

describe('the specification’s JWT example', () => {
  const jwks = spec.examples.find((e) => e.section === 'Example' && 'keys' in e.example)
    ?.example as unknown as JSONWebKeySet;
  const client: TrustedClient = {
    iss: 'https://fhir-ehr.example.com/',
    jwksUrls: ['https://fhir-ehr.example.com/jwk_uri'],
  };
  const verifier = (now: Date) =>
    createCdsCallerVerifier({
      clients: [client],
      replay: createMemoryJtiStore(() => now.getTime()),
      keysAt: () => createLocalJWKSet(jwks),
      // The example lives 3.5 years (iat 2011, exp 2015): allow that here only.
      maxLifetimeSeconds: 200_000_000,
      now: () => now,
    });
  const audience = 'https://cds.example.org/cds-services/some-service';

  it('verifies with the example JWKS while the JWT is valid, then refuses its replay', async () => {
    const during = verifier(new Date(1_400_000_000_000));
    await expect(during.verify(`Bearer ${SPEC_JWT}`, audience)).resolves.toEqual({
      iss: client.iss,
      name: client.iss,
      jti: 'ee22b021-e1b7-4611-ba5b-8eec6a33ac1e',
      tenant: '2ddd6c3a-8e9a-44c6-a305-52111ad302a2',
    });
    expect(await reason(during.verify(`Bearer ${SPEC_JWT}`, audience))).toBe('The JWT was already used (jti replay)');
  });

  it('refuses it today (expired 2015) and for another service URL', async () => {
    expect(await reason(verifier(new Date()).verify(`Bearer ${SPEC_JWT}`, audience))).toBe('The JWT has expired');
    expect(await reason(verifier(new Date(1_400_000_000_000)).verify(`Bearer ${SPEC_JWT}`, `${audience}-2`))).toBe(
      'The JWT aud is not the URL of this CDS Service endpoint',
    );
  });
});

describe('refusals', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES384');
  const other = await generateKeyPair('ES384');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384', use: 'sig' };
  const client: TrustedClient = { iss: 'https://ehr.test', jwksUrls: ['https://ehr.test/jwks'] };
  const verifier = createCdsCallerVerifier({
    clients: [client],
    replay: createMemoryJtiStore(),
    keysAt: () => createLocalJWKSet({ keys: [jwk] }),
  });
  const audience = 'https://cdss.test/cds-services/x';
  const sign = (
    claims: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
    key: CryptoKey = privateKey,
    lifetime = 120,
  ) =>
    new SignJWT({ jti: crypto.randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'k1', ...header })
      .setIssuer(String(claims['iss'] ?? client.iss))
      .setAudience((claims['aud'] as string) ?? audience)
      .setIssuedAt()
      .setExpirationTime(`${lifetime}s`)
      .sign(key);

  it('accepts a good JWT, with or without an allow-listed jku', async () => {
    await expect(verifier.verify(`Bearer ${await sign()}`, audience)).resolves.toMatchObject({ iss: client.iss });
    const withJku = await sign({}, { jku: 'https://ehr.test/jwks' });
    await expect(verifier.verify(`bearer ${withJku}`, [audience, 'https://other'])).resolves.toMatchObject({
      iss: client.iss,
    });
  });

  it('names why it refuses', async () => {
    expect(await reason(verifier.verify(undefined, audience))).toMatch(/must send Authorization/);
    expect(await reason(verifier.verify('Basic abc', audience))).toMatch(/must send Authorization/);
    expect(await reason(verifier.verify(`Bearer ${await sign({ iss: 'https://evil.test' })}`, audience))).toBe(
      'The JWT issuer is not a trusted CDS Client',
    );
    expect(await reason(verifier.verify(`Bearer ${await sign({}, { jku: 'https://evil.test/jwks' })}`, audience))).toBe(
      'The JWT jku is not on the allow-list of its issuer',
    );
    expect(await reason(verifier.verify(`Bearer ${await sign({}, {}, other.privateKey)}`, audience))).toBe(
      'The JWT signature is invalid',
    );
    expect(
      await reason(verifier.verify(`Bearer ${await sign({ aud: 'https://cdss.test/cds-services' })}`, audience)),
    ).toBe('The JWT aud is not the URL of this CDS Service endpoint');
    expect(await reason(verifier.verify(`Bearer ${await sign({}, { typ: 'at+jwt' })}`, audience))).toMatch(/header/);
    expect(await reason(verifier.verify(`Bearer ${await sign({}, {}, privateKey, 3600)}`, audience))).toBe(
      'The JWT may live at most 300 s',
    );
    const hmac = await new SignJWT({ jti: 'h' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'k1' })
      .setIssuer(client.iss)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode('x'.repeat(32)));
    expect(await reason(verifier.verify(`Bearer ${hmac}`, audience))).toMatch(/asymmetric alg/);
    const noJti = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'k1' })
      .setIssuer(client.iss)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(privateKey);
    expect(await reason(verifier.verify(`Bearer ${noJti}`, audience))).toMatch(/jti/);
  });

  it('refuses a replayed jti but not a failed first attempt', async () => {
    const token = await sign();
    expect(await reason(verifier.verify(`Bearer ${token}`, 'https://elsewhere'))).toMatch(/aud/);
    await verifier.verify(`Bearer ${token}`, audience);
    expect(await reason(verifier.verify(`Bearer ${token}`, audience))).toBe('The JWT was already used (jti replay)');
  });
});

describe('a CDS Client registered with inline keys', () => {
  it('verifies with the registered keys, never fetches, and refuses a jku', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384');
    const client: TrustedClient = {
      iss: 'urn:example:inline-ehr',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kty: 'EC', kid: 'inline-1', alg: 'ES384' }] },
    };
    const verifier = createCdsCallerVerifier({
      clients: [client],
      replay: createMemoryJtiStore(),
      keysAt: () => {
        throw new Error('no JWKS URL may be fetched');
      },
    });
    const audience = 'http://127.0.0.1:8080/cds-services';
    const sign = (header: Record<string, string> = {}): Promise<string> =>
      new SignJWT({ jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: 'ES384', kid: 'inline-1', typ: 'JWT', ...header })
        .setIssuer(client.iss)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    await expect(verifier.verify(`Bearer ${await sign()}`, audience)).resolves.toMatchObject({ iss: client.iss });
    expect(await reason(verifier.verify(`Bearer ${await sign({ jku: 'https://evil.example/jwks' })}`, audience))).toBe(
      'The JWT jku is not on the allow-list of its issuer',
    );
  });
});
