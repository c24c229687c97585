import { describe, expect, it } from 'vitest';
import { basicAuth, bearerAuth, oauth2Auth, type AuthRequest } from './auth.js';
import { ValidationError } from './errors.js';
import { createTestClock } from './testing/clock.js';

const req = (): AuthRequest => ({ method: 'GET', url: 'http://h/x', headers: {} });

describe('bearerAuth and basicAuth', () => {
  it('reject empty or malformed credentials', () => {
    expect(() => bearerAuth('')).toThrow(ValidationError);
    expect(() => basicAuth('', 'p')).toThrow(ValidationError);
    expect(() => basicAuth('a:b', 'p')).toThrow(/user name/);
  });

  it('encode basic credentials as UTF-8 base64', async () => {
    const r = req();
    await basicAuth('ci', 'pässword').authorize(r);
    expect(Buffer.from(r.headers['authorization']!.slice(6), 'base64').toString('utf8')).toBe('ci:pässword');
  });

  it('call a bearer getter for every request', async () => {
    let n = 0;
    const auth = bearerAuth(() => `t${++n}`);
    const a = req();
    const b = req();
    await auth.authorize(a);
    await auth.authorize(b);
    expect([a.headers['authorization'], b.headers['authorization']]).toEqual(['Bearer t1', 'Bearer t2']);
  });
});

describe('oauth2Auth', () => {
  it('caches the token until shortly before expiry, then refreshes once for concurrent callers', async () => {
    const clock = createTestClock();
    let fetches = 0;
    const auth = oauth2Auth(
      { fetchToken: () => Promise.resolve({ accessToken: `t${++fetches}`, expiresAt: clock.now() + 60_000 }) },
      { clock, refreshSkewMs: 10_000 },
    );
    const first = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const r = req();
        await auth.authorize(r);
        return r.headers['authorization'];
      }),
    );
    expect(first).toEqual(Array(5).fill('Bearer t1'));
    clock.advance(49_000);
    const r1 = req();
    await auth.authorize(r1);
    expect(r1.headers['authorization']).toBe('Bearer t1');
    clock.advance(2_000); // inside the skew window
    const later = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const r = req();
        await auth.authorize(r);
        return r.headers['authorization'];
      }),
    );
    expect(later).toEqual(Array(5).fill('Bearer t2'));
    expect(fetches).toBe(2);
  });

  it('does not refresh again for a 401 of a token that was already replaced', async () => {
    let fetches = 0;
    const auth = oauth2Auth({ fetchToken: () => Promise.resolve({ accessToken: `t${++fetches}` }) });
    const stale = req();
    await auth.authorize(stale);
    expect(await auth.onUnauthorized?.(stale)).toBe(true);
    expect(fetches).toBe(2);
    // the same stale token refused again: t2 is current, so no new refresh
    expect(await auth.onUnauthorized?.(stale)).toBe(true);
    expect(fetches).toBe(2);
    // without the request, it refreshes
    expect(await auth.onUnauthorized?.()).toBe(true);
    expect(fetches).toBe(3);
  });

  it('rejects a malformed token with a ValidationError and recovers on the next call', async () => {
    let bad = true;
    const auth = oauth2Auth({
      fetchToken: () => Promise.resolve(bad ? ({ accessToken: '' } as { accessToken: string }) : { accessToken: 'ok' }),
    });
    await expect(auth.authorize(req())).rejects.toThrow(ValidationError);
    bad = false;
    const r = req();
    await auth.authorize(r);
    expect(r.headers['authorization']).toBe('Bearer ok');
  });

  it('propagates a token provider failure to every waiting caller', async () => {
    const auth = oauth2Auth({ fetchToken: () => Promise.reject(new Error('token endpoint down')) });
    const results = await Promise.allSettled([auth.authorize(req()), auth.authorize(req())]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
