import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { createTestClock } from './testing/clock.js';

describe('systemClock', () => {
  it('sleeps, and rejects with the abort reason when aborted before or during the sleep', async () => {
    const before = systemClock.now();
    await systemClock.sleep(5);
    expect(systemClock.now()).toBeGreaterThanOrEqual(before);
    const pre = new AbortController();
    pre.abort(new Error('pre'));
    await expect(systemClock.sleep(10_000, pre.signal)).rejects.toThrow('pre');
    const during = new AbortController();
    const pending = systemClock.sleep(10_000, during.signal);
    during.abort(new Error('during'));
    await expect(pending).rejects.toThrow('during');
    const plain = new AbortController();
    const p2 = systemClock.sleep(10_000, plain.signal);
    plain.abort();
    await expect(p2).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('createTestClock', () => {
  it('records sleeps and advances time without waiting', async () => {
    const clock = createTestClock(1000);
    await clock.sleep(250);
    clock.advance(50);
    expect(clock.now()).toBe(1300);
    expect(clock.sleeps).toEqual([250]);
    const aborted = new AbortController();
    aborted.abort(new Error('x'));
    await expect(clock.sleep(1, aborted.signal)).rejects.toThrow('x');
  });
});
