/**
 * One test per token rule, each with a hand-made token that breaks exactly that rule, and the verified-token cache.
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { createConnectedVerifier, createSandboxIssuer, createTokenVerifier, type TokenSettings } from './tokens.js';
import { freePort } from '@cdss/core/testing';

const settings: TokenSettings = { issuer: 'https://idp.test', audience: 'cdss', roleClaim: 'roles' };
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const nowSeconds = NOW / 1000;
const clock = { now: NOW };
const tick = () => clock.now;

/** A token with the usual claims; `claims` overrides or (with undefined) removes them. */
function sign(
  key: CryptoKey | KeyObject | Uint8Array,
  alg: string,
  claims: Partial<Record<'exp' | 'iat' | 'nbf' | 'sub', number | string | undefined>> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const payload: JWTPayload = Object.fromEntries(
    Object.entries({
      iss: settings.issuer,
      aud: settings.audience,
      sub: 'u-1',
      roles: ['nurse'],
      iat: nowSeconds,
      exp: nowSeconds + 600,
      ...claims,
    }).filter(([, value]) => value !== undefined),
  );
  return new SignJWT(payload).setProtectedHeader({ alg, ...header }).sign(key);
}

const secret = randomBytes(32);
const hsVerifier = () => createTokenVerifier(secret, ['HS256'], settings, { now: tick, cache: { maxEntries: 0 } });

afterEach(() => {
  clock.now = NOW;
});

describe('claims', () => {
  it('accepts a well-formed token', async () => {
    await expect(hsVerifier().verify(await sign(secret, 'HS256'))).resolves.toMatchObject({ id: 'u-1' });
  });

  it('refuses a token without exp', async () => {
    await expect(hsVerifier().verify(await sign(secret, 'HS256', { exp: undefined }))).rejects.toThrow(/exp/);
  });

  it('refuses a token without sub', async () => {
    await expect(hsVerifier().verify(await sign(secret, 'HS256', { sub: undefined }))).rejects.toThrow(/sub/);
  });

  it('refuses an expired token, allowing a small clock skew', async () => {
    const verifier = hsVerifier();
    await expect(verifier.verify(await sign(secret, 'HS256', { exp: nowSeconds - 10 }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(secret, 'HS256', { exp: nowSeconds - 31 }))).rejects.toThrow(/exp/);
  });

  it('refuses a token whose exp lies further ahead than the longest lifetime (a century ahead)', async () => {
    const verifier = hsVerifier();
    const century = nowSeconds + 100 * 365 * 86_400;
    await expect(verifier.verify(await sign(secret, 'HS256', { exp: century }))).rejects.toThrow(/lives longer/);
    await expect(verifier.verify(await sign(secret, 'HS256', { exp: nowSeconds + 86_400 }))).resolves.toBeDefined();
    const short = createTokenVerifier(secret, ['HS256'], { ...settings, maxLifetimeSeconds: 300 }, { now: tick });
    await expect(short.verify(await sign(secret, 'HS256'))).rejects.toThrow(/lives longer than 300 s/);
  });

  it('refuses a token not yet valid (nbf), allowing a small clock skew', async () => {
    const verifier = hsVerifier();
    await expect(verifier.verify(await sign(secret, 'HS256', { nbf: nowSeconds + 20 }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(secret, 'HS256', { nbf: nowSeconds + 60 }))).rejects.toThrow(/nbf/);
  });

  it('refuses a token issued in the future (iat a year ahead), and accepts one without iat', async () => {
    const verifier = hsVerifier();
    const yearAhead = nowSeconds + 365 * 86_400;
    await expect(verifier.verify(await sign(secret, 'HS256', { iat: yearAhead }))).rejects.toThrow(/iat/);
    await expect(verifier.verify(await sign(secret, 'HS256', { iat: nowSeconds + 20 }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(secret, 'HS256', { iat: undefined }))).resolves.toBeDefined();
  });

  it('refuses a wrong issuer or audience, and a token with no CDSS role', async () => {
    const verifier = hsVerifier();
    const other = (payload: JWTPayload) =>
      new SignJWT({ iss: settings.issuer, aud: 'cdss', sub: 'u', roles: ['nurse'], exp: nowSeconds + 60, ...payload })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(secret);
    await expect(verifier.verify(await other({ iss: 'https://evil.test' }))).rejects.toThrow(/iss/);
    await expect(verifier.verify(await other({ aud: 'other' }))).rejects.toThrow(/aud/);
    await expect(verifier.verify(await other({ roles: ['superuser'] }))).rejects.toThrow(/role/);
  });
});

/** An RSA pair as Node key objects, which sign with RS* and PS* alike. */
const rsaKeys = () => generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('algorithm allow-list per key type', () => {
  it('accepts only HS256 with the sandbox secret: HS384/HS512 over the same secret and alg none are refused', async () => {
    const issuer = createSandboxIssuer(settings);
    const { accessToken } = await issuer.issue('demo-nurse');
    await expect(issuer.verifier.verify(accessToken)).resolves.toMatchObject({ id: 'demo-nurse' });
    const verifier = hsVerifier();
    for (const alg of ['HS384', 'HS512'])
      await expect(verifier.verify(await sign(secret, alg)), alg).rejects.toThrow(/alg/);
    const payload = (await sign(secret, 'HS256')).split('.')[1];
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    await expect(verifier.verify(none)).rejects.toThrow();
  });

  it('refuses an empty list or alg none as the allow-list', () => {
    expect(() => createTokenVerifier(secret, [], settings)).toThrow(/explicit list/);
    expect(() => createTokenVerifier(secret, ['none'], settings)).toThrow(/explicit list/);
  });

  it('takes the algorithms of an RSA public key, never an HMAC keyed with the PEM text', async () => {
    const { publicKey, privateKey } = rsaKeys();
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const verifier = createConnectedVerifier({ publicKeyPem: pem }, settings, { now: tick });
    await expect(verifier.verify(await sign(privateKey, 'RS256'))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(privateKey, 'PS256'))).resolves.toBeDefined();
    // The classic key-confusion attack: HS256 with the public key's PEM as the HMAC secret.
    const confused = await sign(new TextEncoder().encode(pem), 'HS256');
    await expect(verifier.verify(confused)).rejects.toThrow(/alg/);
  });

  it('narrows to the configured algorithms, and refuses a list that does not fit the key', async () => {
    const { publicKey, privateKey } = rsaKeys();
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const verifier = createConnectedVerifier(
      { publicKeyPem: pem },
      { ...settings, algorithms: ['RS256'] },
      { now: tick },
    );
    await expect(verifier.verify(await sign(privateKey, 'RS256'))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(privateKey, 'PS256'))).rejects.toThrow(/alg/);
    expect(() => createConnectedVerifier({ publicKeyPem: pem }, { ...settings, algorithms: ['ES256'] })).toThrow(
      /ES256 cannot verify tokens with a rsa key/,
    );
  });

  it('takes ES256/384/512 for an EC key and EdDSA for an Ed25519 key', async () => {
    const ec = await generateKeyPair('ES256');
    const ecVerifier = createConnectedVerifier({ publicKeyPem: await exportSPKI(ec.publicKey) }, settings, {
      now: tick,
    });
    await expect(ecVerifier.verify(await sign(ec.privateKey, 'ES256'))).resolves.toBeDefined();
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const edVerifier = createConnectedVerifier({ publicKeyPem: await exportSPKI(ed.publicKey) }, settings, {
      now: tick,
    });
    await expect(edVerifier.verify(await sign(ed.privateKey, 'EdDSA'))).resolves.toBeDefined();
    await expect(edVerifier.verify(await sign(ec.privateKey, 'ES256'))).rejects.toThrow(/alg/);
  });
});

describe('the verified-token cache', () => {
  /** A verifier whose key lookups are counted (each lookup is one signature check). */
  function counted(cache: { maxEntries?: number; ttlMs?: number } = {}) {
    const lookups = { count: 0 };
    const verifier = createTokenVerifier(
      async () => {
        lookups.count += 1;
        return secret;
      },
      ['HS256'],
      settings,
      { now: tick, cache },
    );
    return { verifier, lookups };
  }

  it('checks a token’s signature once, then answers from memory', async () => {
    const { verifier, lookups } = counted();
    const token = await sign(secret, 'HS256');
    for (let i = 0; i < 5; i += 1) await expect(verifier.verify(token)).resolves.toMatchObject({ id: 'u-1' });
    expect(lookups.count).toBe(1);
    expect(verifier.cached()).toBe(1);
  });

  it('never remembers a token past its exp', async () => {
    const { verifier } = counted({ ttlMs: 3_600_000 });
    const token = await sign(secret, 'HS256', { exp: nowSeconds + 5 });
    await verifier.verify(token);
    clock.now = NOW + 5_000;
    // Past exp the cached verdict is gone; only the clock tolerance still lets the signature check pass ...
    await expect(verifier.verify(token)).resolves.toBeDefined();
    clock.now = NOW + 36_000;
    // ... and past it the token is refused although the TTL has not run out.
    await expect(verifier.verify(token)).rejects.toThrow(/exp/);
  });

  it('checks the signature again after the TTL', async () => {
    const { verifier, lookups } = counted({ ttlMs: 60_000 });
    const token = await sign(secret, 'HS256');
    await verifier.verify(token);
    clock.now = NOW + 59_000;
    await verifier.verify(token);
    expect(lookups.count).toBe(1);
    clock.now = NOW + 60_000;
    await verifier.verify(token);
    expect(lookups.count).toBe(2);
  });

  it('is bounded: the least recently used token goes first', async () => {
    const { verifier, lookups } = counted({ maxEntries: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => sign(secret, 'HS256', { sub })));
    await verifier.verify(a!);
    await verifier.verify(b!);
    await verifier.verify(a!); // a is now the most recent
    await verifier.verify(c!); // evicts b
    expect(verifier.cached()).toBe(2);
    expect(lookups.count).toBe(3);
    await verifier.verify(a!);
    expect(lookups.count).toBe(3);
    await verifier.verify(b!);
    expect(lookups.count).toBe(4);
  });

  it('answers remembered() only for a token it verified and still trusts, without checking anything', async () => {
    const { verifier, lookups } = counted({ ttlMs: 60_000 });
    const token = await sign(secret, 'HS256');
    expect(verifier.remembered(token)).toBeUndefined();
    await verifier.verify(token);
    expect(verifier.remembered(token)).toMatchObject({ id: 'u-1' });
    expect(verifier.remembered(`${token}x`)).toBeUndefined();
    expect(lookups.count).toBe(1);
    clock.now = NOW + 60_000;
    expect(verifier.remembered(token)).toBeUndefined();
    verifier.clear();
    expect(verifier.remembered(token)).toBeUndefined();
  });

  it('does not remember refused tokens', async () => {
    const { verifier } = counted();
    await expect(verifier.verify(await sign(secret, 'HS256', { exp: undefined }))).rejects.toThrow();
    expect(verifier.cached()).toBe(0);
  });
});

describe('a JWKS key set', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  async function keyPair(kid: string) {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
  }

  it('forgets every verified token when the key set rotates, so tokens of a withdrawn key stop working', async () => {
    const first = await keyPair('k1');
    const second = await keyPair('k2');
    let published = [first.jwk];
    let fetches = 0;
    server = createServer((_req, res) => {
      fetches += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    });
    server.listen(await freePort(), '127.0.0.1');
    await once(server, 'listening');
    const address = server.address() as { port: number };
    const verifier = createConnectedVerifier(
      { jwksUrl: `http://127.0.0.1:${address.port}/jwks`, jwks: { cooldownMs: 0 } },
      settings,
      // The JWKS client runs on the real clock; the tokens' times are made relative to it.
      {},
    );
    const realNow = Math.floor(Date.now() / 1000);
    const tokenOf = (pair: Awaited<ReturnType<typeof keyPair>>) =>
      sign(pair.privateKey, 'ES256', { iat: realNow, exp: realNow + 600 }, { kid: pair.kid });
    const old = await tokenOf(first);
    await verifier.verify(old);
    await verifier.verify(old);
    expect(fetches).toBe(1);
    expect(verifier.cached()).toBe(1);

    // The IdP withdraws k1 and publishes k2; the first token of k2 makes the verifier fetch the new set.
    published = [second.jwk];
    await verifier.verify(await tokenOf(second));
    expect(fetches).toBe(2);
    expect(verifier.cached()).toBe(1);
    await expect(verifier.verify(old)).rejects.toThrow();
  });

  it('refuses an HMAC token whatever the key set holds', async () => {
    const verifier = createConnectedVerifier({ jwksUrl: 'http://127.0.0.1:9/jwks' }, settings);
    await expect(verifier.verify(await sign(secret, 'HS256'))).rejects.toThrow(/alg/);
    expect(() =>
      createConnectedVerifier({ jwksUrl: 'http://127.0.0.1:9/jwks' }, { ...settings, algorithms: ['HS256'] }),
    ).toThrow(/HS256 cannot verify tokens with a JWKS/);
  });
});
