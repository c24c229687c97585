/**
 * Time as an injectable dependency, so tests control backoff sleeps and token expiry without waiting.
 * @packageDocumentation
 */

/**
 * A source of time. The transport sleeps between retries through it and `oauth2Auth` reads token
 * expiry from it; tests pass a fake (see `createTestClock` in `@cdss/core/testing`).
 * @category Utilities
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds.
   * @param ms - how long to wait
   * @param signal - rejects early with `signal.reason` when aborted
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * The real clock: `Date.now()` and `setTimeout`. An aborted sleep clears its timer.
 * @category Utilities
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal as AbortSignal));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
