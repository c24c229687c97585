import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CdssError, HttpError, RetryError, TimeoutError, ValidationError } from './errors.js';

describe('error hierarchy', () => {
  it('formats HttpError messages and decides retryability from the status', () => {
    const error = new HttpError({ method: 'get', url: 'https://host/path', status: 404, statusText: 'Not Found' });
    expect(error.message).toBe('GET https://host/path: 404 Not Found');
    expect(error.retryable).toBe(false);
    expect(new HttpError({ method: 'GET', url: 'u', status: 503 }).retryable).toBe(true);
    expect(new HttpError({ method: 'GET', url: 'u' }).message).toBe('GET u: no response');
    expect(error).toBeInstanceOf(CdssError);
  });

  it('recognises errors across duplicate package copies through the Symbol.for marker', () => {
    const foreign = Object.assign(new Error('x'), {
      [Symbol.for('@cdss/core.error')]: true,
      [Symbol.for('@cdss/core.http-error')]: true,
    });
    expect(CdssError.isInstance(foreign)).toBe(true);
    expect(HttpError.isInstance(foreign)).toBe(true);
    expect(ValidationError.isInstance(foreign)).toBe(false);
    expect(CdssError.isInstance(new Error('plain'))).toBe(false);
    expect(CdssError.isInstance(null)).toBe(false);
  });

  it('builds ValidationError from zod issues naming the field and kinds, not values', () => {
    const result = z.object({ lname: z.string().min(2), dob: z.string() }).safeParse({ lname: 'X', dob: 19800101 });
    expect(result.success).toBe(false);
    const error = ValidationError.fromZod(result.error!, 'Invalid patient');
    expect(error.fields).toEqual(['lname', 'dob']);
    expect(error.message).toBe('Invalid patient: lname, dob');
    expect(error.issues[1]).toMatchObject({
      path: 'dob',
      code: 'invalid_type',
      expected: 'string',
      received: 'number',
    });
    expect(JSON.stringify(error.issues)).not.toContain('19800101');
    expect(ValidationError.isInstance(error)).toBe(true);
  });

  it('keeps every attempt in RetryError and the limit in TimeoutError', () => {
    const a = new Error('first');
    const b = new TimeoutError('took too long', 50);
    const error = new RetryError([a, b]);
    expect(error.errors).toEqual([a, b]);
    expect(error.lastError).toBe(b);
    expect(error.cause).toBe(b);
    expect(error.message).toBe('Failed after 2 attempts: took too long');
    expect(TimeoutError.isInstance(b) && b.timeoutMs).toBe(50);
    expect(RetryError.isInstance(error)).toBe(true);
  });
});
