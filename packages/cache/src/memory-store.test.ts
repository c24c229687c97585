import { ValidationError } from '@cdss/core';
import { createTestClock } from '@cdss/core/testing';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';
import { createCountingMetrics } from './testing.js';

const forever = { expiresAt: Date.UTC(2100, 0), staleUntil: Date.UTC(2100, 0) };

describe('MemoryStore bounds', () => {
  it('evicts the least recently used entry past maxEntries (a read refreshes recency)', async () => {
    const { listener, counts } = createCountingMetrics();
    const store = new MemoryStore({ maxEntries: 3, metrics: listener });
    await store.set('a', 1, forever);
    await store.set('b', 2, forever);
    await store.set('c', 3, forever);
    await store.get('a'); // a is now the most recent; b is the oldest
    await store.set('d', 4, forever);
    expect(await store.get('b')).toBeUndefined();
    expect((await store.get('a'))?.value).toBe(1);
    expect((await store.get('c'))?.value).toBe(3);
    expect((await store.get('d'))?.value).toBe(4);
    expect(store.size).toBe(3);
    expect(counts.evictions.lru).toBe(1);
  });

  it('evicts by bytes (key plus JSON text) and never keeps more than maxBytes', async () => {
    const store = new MemoryStore({ maxBytes: 100 });
    await store.set('k1', 'x'.repeat(40), forever); // 2 + 42 = 44 bytes
    await store.set('k2', 'y'.repeat(40), forever); // 88 bytes in all
    expect(store.byteSize).toBe(88);
    await store.set('k3', 'z'.repeat(40), forever); // would be 132: k1 goes
    expect(store.byteSize).toBe(88);
    expect(await store.get('k1')).toBeUndefined();
    expect((await store.get('k3'))?.value).toBe('z'.repeat(40));
    // multi-byte characters count as their UTF-8 size
    await store.set('k4', 'é'.repeat(40), forever); // 2 + 82 = 84 bytes: only k4 fits
    expect(store.size).toBe(1);
    expect(store.byteSize).toBe(84);
  });

  it('does not cache a value larger than the whole budget, and drops the old value of that key', async () => {
    const store = new MemoryStore({ maxBytes: 50 });
    await store.set('k', 'small', forever);
    await store.set('k', 'x'.repeat(100), forever);
    expect(await store.get('k')).toBeUndefined();
    expect(store.byteSize).toBe(0);
  });

  it('hands out deeply frozen copies, so callers cannot corrupt the cache', async () => {
    const store = new MemoryStore();
    const original = { a: { b: [1, 2] } };
    await store.set('k', original, forever);
    original.a.b.push(3); // mutating the caller's object does not reach the cache
    const read = await store.get('k');
    expect(read?.value).toEqual({ a: { b: [1, 2] } });
    expect(() => {
      ((read?.value as { a: { b: number[] } }).a.b as number[]).push(4);
    }).toThrow(TypeError);
  });

  it('expires by the injected clock and reports expiry evictions', async () => {
    const clock = createTestClock();
    const { listener, counts } = createCountingMetrics();
    const store = new MemoryStore({ clock, metrics: listener });
    await store.set('k', 1, { expiresAt: clock.now() + 10, staleUntil: clock.now() + 20 });
    clock.advance(15);
    expect((await store.get('k'))?.value).toBe(1);
    clock.advance(10);
    expect(await store.get('k')).toBeUndefined();
    expect(counts.evictions.expired).toBe(1);
    expect(store.size).toBe(0);
  });

  it('validates its options', () => {
    expect(() => new MemoryStore({ maxEntries: 0 })).toThrow(ValidationError);
    expect(() => new MemoryStore({ maxBytes: -1 })).toThrow(ValidationError);
  });
});
