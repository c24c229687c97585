import { ValidationError } from '@cdss/core';
import { createTestClock } from '@cdss/core/testing';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryInvalidationHub } from './bus.js';
import { Cache } from './cache.js';
import { MemoryStore } from './memory-store.js';
import { createCountingMetrics, SwitchableStore } from './testing.js';
import { TieredStore } from './tiered-store.js';
import type { CacheEntry } from './types.js';

function setup(options: { staleWhileRevalidateMs?: number; staleIfErrorMs?: number; jitter?: number } = {}) {
  const clock = createTestClock();
  const { listener, counts } = createCountingMetrics();
  const l2 = new SwitchableStore(new MemoryStore({ clock, tier: 'l2' }));
  const store = new TieredStore({ l1: new MemoryStore({ clock }), l2 });
  const cache = new Cache({ store, clock, metrics: listener, ttlMs: 1_000, jitter: 0, ...options });
  return { clock, counts, l2, store, cache };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('Cache.getOrLoad', () => {
  it('loads on a miss, then answers from L1, and from L2 in a fresh instance', async () => {
    const { cache, counts, l2, clock } = setup();
    let loads = 0;
    const loader = () => Promise.resolve({ id: 'p1', n: ++loads });
    expect(await cache.getOrLoad('p1', loader)).toEqual({
      value: { id: 'p1', n: 1 },
      stale: false,
      source: 'loader',
      ageMs: 0,
    });
    clock.advance(10);
    expect(await cache.getOrLoad('p1', loader)).toMatchObject({
      value: { id: 'p1', n: 1 },
      source: 'l1',
      stale: false,
      ageMs: 10,
    });
    const other = new Cache({ store: new TieredStore({ l1: new MemoryStore({ clock }), l2 }), clock, ttlMs: 1_000 });
    expect(await other.getOrLoad('p1', loader)).toMatchObject({ value: { id: 'p1', n: 1 }, source: 'l2' });
    expect(loads).toBe(1);
    expect(counts).toMatchObject({ misses: 1, loads: 1, hits: { l1: 1, l2: 0 } });
  });

  it('makes exactly one loader call for 100 concurrent misses of one key', async () => {
    const { cache } = setup();
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const loader = async () => {
      calls++;
      await gate;
      return 'value';
    };
    const all = Promise.all(Array.from({ length: 100 }, () => cache.getOrLoad('hot', loader)));
    await tick();
    release();
    const results = await all;
    expect(calls).toBe(1);
    expect(results.every((r) => r.value === 'value' && !r.stale)).toBe(true);
  });

  it('shares a loader failure among concurrent callers and retries on the next call', async () => {
    const { cache, counts } = setup();
    let calls = 0;
    const failing = () => {
      calls++;
      return Promise.reject(new Error('upstream down'));
    };
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => cache.getOrLoad('k', failing)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(calls).toBe(1);
    await expect(cache.getOrLoad('k', () => Promise.resolve(1))).resolves.toMatchObject({ value: 1, source: 'loader' });
    expect(counts.loadErrors).toBe(1);
  });

  it('shortens TTLs by the jitter fraction, never lengthens them', async () => {
    const clock = createTestClock();
    const store = new MemoryStore({ clock });
    const randoms = [0, 0.5, 0.999];
    const cache = new Cache({ store, clock, ttlMs: 1_000, jitter: 0.2, random: () => randoms.shift() ?? 0 });
    for (const key of ['a', 'b', 'c']) await cache.getOrLoad(key, () => Promise.resolve(key));
    const ttls = await Promise.all(
      ['a', 'b', 'c'].map(async (k) => ((await store.get(k)) as CacheEntry).expiresAt - clock.now()),
    );
    expect(ttls).toEqual([1_000, 900, 800]);
  });

  it('serves stale while revalidating once in the background', async () => {
    const { cache, clock, counts } = setup({ staleWhileRevalidateMs: 500 });
    let version = 0;
    let release!: () => void;
    let gate = Promise.resolve();
    const loader = async () => {
      version++;
      await gate;
      return `v${version}`;
    };
    await cache.getOrLoad('k', loader);
    clock.advance(1_100); // expired, within the 500 ms revalidate window
    gate = new Promise<void>((resolve) => (release = resolve));
    const a = await cache.getOrLoad('k', loader);
    const b = await cache.getOrLoad('k', loader);
    expect(a).toMatchObject({ value: 'v1', stale: true, source: 'l2' }); // stale in L1, so L2 was checked for a fresher copy
    expect(b).toMatchObject({ value: 'v1', stale: true });
    expect(version).toBe(2); // one background load for both
    release();
    for (let i = 0; i < 10 && (await cache.getOrLoad('k', loader)).value !== 'v2'; i++) await tick();
    expect(await cache.getOrLoad('k', loader)).toMatchObject({ value: 'v2', stale: false });
    expect(version).toBe(2); // still only the one background load
    expect(counts.staleServes.revalidate).toBeGreaterThanOrEqual(2);
  });

  it('serves a stale value flagged stale when the loader fails, only within staleIfErrorMs', async () => {
    const { cache, clock, counts } = setup({ staleIfErrorMs: 2_000 });
    await cache.getOrLoad('k', () => Promise.resolve('old'));
    const boom = new Error('OpenEMR 503');
    clock.advance(1_500);
    const served = await cache.getOrLoad('k', () => Promise.reject(boom));
    expect(served).toMatchObject({ value: 'old', stale: true, error: boom, ageMs: 1_500 });
    clock.advance(1_600); // 3.1 s after storing: 2.1 s past expiry, beyond the 2 s bound
    await expect(cache.getOrLoad('k', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(counts.staleServes.error).toBe(1);
  });

  it('throws the loader error when no stale value is allowed', async () => {
    const { cache, clock } = setup();
    await cache.getOrLoad('k', () => Promise.resolve('old'));
    clock.advance(1_001);
    await expect(cache.getOrLoad('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
  });

  it('falls through to the loader when L2 is down, and keeps answering', async () => {
    const { cache, l2, counts } = setup();
    l2.down = true;
    let loads = 0;
    for (let i = 0; i < 3; i++) {
      const r = await cache.getOrLoad(`k${i}`, () => Promise.resolve(++loads));
      expect(r).toMatchObject({ value: loads, source: 'loader', stale: false });
    }
    expect(counts.storeErrors).toBeGreaterThanOrEqual(3);
  });

  it('serves a stale L1 copy when L2 is down and the loader fails', async () => {
    const { cache, l2, clock } = setup({ staleIfErrorMs: 10_000 });
    await cache.getOrLoad('k', () => Promise.resolve('cached'));
    clock.advance(1_500);
    l2.down = true;
    const r = await cache.getOrLoad('k', () => Promise.reject(new Error('upstream down too')));
    expect(r).toMatchObject({ value: 'cached', stale: true, source: 'l1' });
  });

  it('does not fill the store with a load that a concurrent write made stale', async () => {
    const { cache } = setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = cache.getOrLoad('k', async () => {
      await gate;
      return 'old-from-upstream';
    });
    await tick();
    await cache.set('k', 'new-from-write');
    release();
    expect((await slow).value).toBe('old-from-upstream');
    expect(await cache.getOrLoad('k', () => Promise.resolve('reloaded'))).toMatchObject({
      value: 'new-from-write',
      source: 'l1',
    });
  });

  it('validates values read from L2 with the schema and treats a mismatch as a miss', async () => {
    const { cache, l2, clock } = setup();
    await l2.set('k', { wrong: true }, { expiresAt: clock.now() + 1_000, staleUntil: clock.now() + 1_000 });
    const schema = z.object({ id: z.string() });
    const r = await cache.getOrLoad('k', () => Promise.resolve({ id: 'x' }), { schema });
    expect(r).toEqual({ value: { id: 'x' }, stale: false, source: 'loader', ageMs: 0 });
  });

  it('answers with the loaded value even when it cannot be cached', async () => {
    const { cache, counts } = setup();
    const r = await cache.getOrLoad('k', () => Promise.resolve({ at: new Date(0) }));
    expect(r.value).toEqual({ at: new Date(0) });
    expect(counts.storeErrors).toBe(1);
  });

  it('rejects a bad key or policy without calling the loader', async () => {
    const { cache } = setup();
    let called = false;
    const loader = () => {
      called = true;
      return Promise.resolve(1);
    };
    await expect(cache.getOrLoad('', loader)).rejects.toBeInstanceOf(ValidationError);
    await expect(cache.getOrLoad('k', loader, { ttlMs: -5 })).rejects.toBeInstanceOf(ValidationError);
    expect(called).toBe(false);
    expect(() => new Cache({ store: new MemoryStore(), jitter: 2 })).toThrow(ValidationError);
  });
});

describe('Cache writes and invalidation', () => {
  it('set and invalidate reach other instances through the bus', async () => {
    const clock = createTestClock();
    const hub = new MemoryInvalidationHub();
    const shared = new MemoryStore({ clock, tier: 'l2' });
    const mk = () =>
      new Cache({ store: new TieredStore({ l1: new MemoryStore({ clock }), l2: shared }), bus: hub.connect(), clock });
    const a = mk();
    const b = mk();
    await a.getOrLoad('p', () => Promise.resolve('v1'));
    expect(await b.getOrLoad('p', () => Promise.resolve('unused'))).toMatchObject({ value: 'v1', source: 'l2' });
    expect(await b.getOrLoad('p', () => Promise.resolve('unused'))).toMatchObject({ source: 'l1' });
    await a.set('p', 'v2');
    await tick();
    expect(await b.getOrLoad('p', () => Promise.resolve('unused'))).toMatchObject({ value: 'v2', source: 'l2' });
    await a.invalidate('p');
    await tick();
    expect(await b.getOrLoad('p', () => Promise.resolve('v3'))).toMatchObject({ value: 'v3', source: 'loader' });
  });

  it('schedules a repair that bypasses the store until a background evict succeeds', async () => {
    const { cache, l2, counts, clock } = setup();
    await cache.getOrLoad('k', () => Promise.resolve('stale-in-l2'));
    l2.down = true;
    cache.scheduleRepair('k');
    expect(cache.repairs.has('k')).toBe(true);
    l2.down = false;
    const before = l2.calls;
    expect(await cache.getOrLoad('k', () => Promise.resolve('fresh'))).toMatchObject({
      value: 'fresh',
      source: 'loader',
    });
    expect(l2.calls).toBe(before); // neither read nor filled while under repair
    l2.down = true;
    clock.advance(1_000);
    expect(await cache.repairs.runOnce()).toEqual({ succeeded: 0, failed: 1 });
    l2.down = false;
    clock.advance(1_000);
    expect(await cache.repairs.runOnce()).toEqual({ succeeded: 1, failed: 0 });
    expect(cache.repairs.has('k')).toBe(false);
    expect(await l2.get('k')).toBeUndefined();
    expect(counts.repairs).toMatchObject({ scheduled: 1, 'retry-failed': 1, succeeded: 1 });
    await cache.close();
  });
});
