/**
 * The `Idempotency-Key` request header (IETF draft `draft-ietf-httpapi-idempotency-key-header`): which keys are
 * accepted, and how a key is bound to its caller and to the request it was first used for.
 * @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import type { Principal } from '../auth/tokens.js';
import { ApiError } from './errors.js';

/** The longest key accepted; a longer one answers 400 (keys are never truncated, so two keys never collide). */
export const IDEMPOTENCY_KEY_MAX = 255;

/**
 * A key as clients send it: 8–255 visible ASCII characters (a UUID is the usual choice). The draft makes the header
 * a Structured Field string, so a quoted value (`"8e03…"`) is accepted too.
 */
export const idempotencyKeyHeaderSchema = z
  .string()
  .min(8, 'Idempotency-Key must be at least 8 characters')
  .max(IDEMPOTENCY_KEY_MAX, `Idempotency-Key must be at most ${IDEMPOTENCY_KEY_MAX} characters`)
  .regex(/^[\x21-\x7e]+$/, 'Idempotency-Key must be visible ASCII characters');

/** What an idempotent write is bound to. */
export interface IdempotencyScope {
  /** The stored key: a digest of the caller and the client's key (one caller's key never meets another's). */
  key: string;
  /** What is fingerprinted: the same key with another method, path or body is refused with 422. */
  request: { method: string; path: string; body: unknown };
}

/**
 * Reads the request's `Idempotency-Key`, if any.
 * @param req - the request
 * @param principal - the authenticated caller the key is bound to
 * @param body - the validated body (fingerprinted)
 * @returns the scope, or undefined when the header is absent
 * @throws {@link ApiError} 400 for a malformed, short or long key (nothing was done)
 */
export function idempotencyScope(req: Request, principal: Principal, body: unknown): IdempotencyScope | undefined {
  const raw = req.header('idempotency-key');
  if (raw === undefined) return undefined;
  const unquoted = /^"(.*)"$/.exec(raw)?.[1] ?? raw;
  const parsed = idempotencyKeyHeaderSchema.safeParse(unquoted);
  if (!parsed.success)
    throw new ApiError(400, 'invalid', parsed.error.issues[0]?.message ?? 'Invalid Idempotency-Key', [
      'Idempotency-Key',
    ]);
  const key = createHash('sha256').update(principal.id).update('\n').update(parsed.data).digest('hex');
  return { key: `idem:${key}`, request: { method: req.method, path: `${req.baseUrl}${req.path}`, body } };
}

/** The header as the OpenAPI document declares it on the routes that honour it (`RouteDefinition.headers`). */
export const idempotencyHeaders = z.object({
  'Idempotency-Key': idempotencyKeyHeaderSchema
    .optional()
    .describe('Makes a retry safe: the same key with the same request answers as the first time, once'),
});

/** What a key can answer besides the route's own statuses: 409 while its first request runs, 422 when reused. */
export const IDEMPOTENCY_ERRORS = [409, 422] as const;
