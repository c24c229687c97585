import { describe, expect, it } from 'vitest';
import { HttpError, TimeoutError, ValidationError } from './errors.js';
import { createRetryPolicy, isRetrySafe, parseRetryAfter, type RetryContext } from './retry.js';

const NOW = Date.UTC(2026, 0, 1);
const ctx = (error: unknown, extra: Partial<RetryContext> = {}): RetryContext => ({
  error,
  attempt: 1,
  method: 'GET',
  hasIdempotencyKey: false,
  now: NOW,
  ...extra,
});
const http = (status: number | undefined, headers: Record<string, string> = {}, retryable?: boolean) =>
  new HttpError({ method: 'GET', url: 'http://h/x', status, responseHeaders: headers, retryable });

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP-dates, and ignores garbage', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(' 120 ', NOW)).toBe(120_000);
    expect(parseRetryAfter(new Date(NOW + 2500).toUTCString(), NOW)).toBe(2000); // HTTP-dates have 1 s resolution
    expect(parseRetryAfter(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0);
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });
});

describe('isRetrySafe', () => {
  it('allows idempotent methods, and POST/PATCH only with a key', () => {
    for (const m of ['GET', 'head', 'OPTIONS', 'PUT', 'DELETE']) expect(isRetrySafe(m, false)).toBe(true);
    expect(isRetrySafe('POST', false)).toBe(false);
    expect(isRetrySafe('PATCH', false)).toBe(false);
    expect(isRetrySafe('POST', true)).toBe(true);
  });
});

describe('createRetryPolicy', () => {
  it('defaults to 2 retries and validates its options', () => {
    expect(createRetryPolicy().maxRetries).toBe(2);
    expect(() => createRetryPolicy({ maxRetries: 1.5 })).toThrow(ValidationError);
    expect(() => createRetryPolicy({ baseDelayMs: -1 })).toThrow(ValidationError);
    expect(() => createRetryPolicy({ retryStatuses: [42] })).toThrow(ValidationError);
  });

  it('backs off exponentially with full jitter, capped at maxDelayMs', () => {
    const policy = createRetryPolicy({ maxRetries: 10, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 });
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => policy.nextDelay(ctx(http(503), { attempt })));
    expect(delays).toEqual([99, 199, 399, 799, 999, 999]);
    const zero = createRetryPolicy({ random: () => 0 });
    expect(zero.nextDelay(ctx(http(503)))).toBe(0);
  });

  it('stops after maxRetries', () => {
    const policy = createRetryPolicy({ maxRetries: 1 });
    expect(policy.nextDelay(ctx(http(503), { attempt: 1 }))).toBeTypeOf('number');
    expect(policy.nextDelay(ctx(http(503), { attempt: 2 }))).toBeUndefined();
  });

  it('retries 408/425/429/5xx, network errors and timeouts; nothing else', () => {
    const policy = createRetryPolicy();
    for (const s of [408, 425, 429, 500, 502, 503, 504])
      expect(policy.nextDelay(ctx(http(s))), String(s)).toBeTypeOf('number');
    for (const s of [400, 401, 403, 404, 409, 422, 501])
      expect(policy.nextDelay(ctx(http(s))), String(s)).toBeUndefined();
    expect(policy.nextDelay(ctx(http(undefined)))).toBeTypeOf('number');
    expect(policy.nextDelay(ctx(http(undefined, {}, false)))).toBeUndefined();
    expect(policy.nextDelay(ctx(new TimeoutError('slow', 10)))).toBeTypeOf('number');
    expect(policy.nextDelay(ctx(new DOMException('aborted', 'AbortError')))).toBeUndefined();
    expect(policy.nextDelay(ctx(new ValidationError('bad', [])))).toBeUndefined();
    expect(policy.nextDelay(ctx(new Error('bug')))).toBeUndefined();
  });

  it('honours custom retry statuses and Retry-After, falling back to backoff when unparseable', () => {
    const policy = createRetryPolicy({ retryStatuses: [409], random: () => 0.5, baseDelayMs: 100 });
    expect(policy.nextDelay(ctx(http(409, { 'retry-after': '2' })))).toBe(2000);
    expect(policy.nextDelay(ctx(http(409, { 'retry-after': 'later' })))).toBe(50);
    expect(policy.nextDelay(ctx(http(503)))).toBeUndefined();
  });

  it('never retries POST/PATCH without an idempotency key', () => {
    const policy = createRetryPolicy();
    expect(policy.nextDelay(ctx(http(503), { method: 'POST' }))).toBeUndefined();
    expect(policy.nextDelay(ctx(http(503), { method: 'PATCH' }))).toBeUndefined();
    expect(policy.nextDelay(ctx(http(503), { method: 'POST', hasIdempotencyKey: true }))).toBeTypeOf('number');
  });
});
