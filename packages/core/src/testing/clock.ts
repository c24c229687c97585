/**
 * A fake clock for tests: sleeps resolve at once and advance time, and every requested sleep is recorded,
 * so a test can assert on backoff delays without waiting for them.
 */
import type { Clock } from '../clock.js';

/** The clock {@link createTestClock} returns. */
export interface TestClock extends Clock {
  /** Every `sleep(ms)` requested, in order. */
  readonly sleeps: number[];
  /**
   * Moves time forward.
   * @param ms - how far
   */
  advance(ms: number): void;
}

/**
 * Creates a {@link TestClock}.
 * @param start - the initial time, epoch milliseconds. Default 2026-01-01T00:00:00Z.
 * @returns a clock whose `sleep` resolves on the next microtask (or rejects if the signal is aborted)
 */
export function createTestClock(start = Date.UTC(2026, 0, 1)): TestClock {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    advance(ms) {
      now += ms;
    },
    sleep(ms, signal) {
      sleeps.push(ms);
      if (signal?.aborted) return Promise.reject(signal.reason as Error);
      now += ms;
      return Promise.resolve();
    },
  };
}
