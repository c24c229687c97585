/**
 * Signed webhooks: how a worker (or the server, for its own subscribers) delivers job events over HTTP.
 *
 * Header format (one header, like Stripe's):
 *
 * ```
 * CDSS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=<another>]
 * ```
 *
 * Several `v1=` entries let a sender sign with an old and a new secret while secrets rotate. The receiver
 * recomputes the HMAC over the raw bytes it received (never a re-serialised JSON), compares in constant time
 * (`crypto.timingSafeEqual`), refuses timestamps outside a window (default ±300 s), and remembers the signatures
 * it accepted within that window so that a captured request replayed inside the window is refused too.
 * @packageDocumentation
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CdssError, HttpError, RetryError } from '@cdss/core';
import type { JobMessage } from './protocol.js';
import { encodeMessage } from './codec.js';

/** The signature header's name (HTTP headers are case-insensitive; Node lower-cases them). */
export const SIGNATURE_HEADER = 'cdss-signature';
/** Informational header: the event's `type`. */
export const EVENT_TYPE_HEADER = 'cdss-event-type';
/** Informational header: the event's `messageId`. */
export const MESSAGE_ID_HEADER = 'cdss-message-id';

/** Why a webhook was refused. */
export type WebhookRejection = 'missing' | 'malformed' | 'expired' | 'mismatch' | 'replayed';

/** Thrown by {@link verifyWebhook}. Answer it with HTTP 401 (409 for `replayed`); never 2xx. */
export class WebhookVerificationError extends CdssError {
  /** Why. */
  readonly rejection: WebhookRejection;
  /**
   * @param rejection - why
   * @param message - detail (never the secret or the body)
   */
  constructor(rejection: WebhookRejection, message: string) {
    super(message, { code: `WEBHOOK_${rejection.toUpperCase()}` });
    this.rejection = rejection;
  }
}

function hmac(secret: string, timestamp: number, body: Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

function toBuffer(body: string | Uint8Array): Buffer {
  return typeof body === 'string'
    ? Buffer.from(body, 'utf8')
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Signs a raw body.
 * @param body - the exact bytes that will be sent
 * @param secrets - one secret, or several during a rotation (each adds a `v1=` entry)
 * @param timestampSeconds - unix seconds (default now)
 * @returns the `CDSS-Signature` header value
 */
export function signWebhook(
  body: string | Uint8Array,
  secrets: string | readonly string[],
  timestampSeconds = Math.floor(Date.now() / 1000),
): string {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  if (list.length === 0 || list.some((s) => s.length < 16))
    throw new CdssError('webhook secrets must be at least 16 characters', { code: 'WEBHOOK_SECRET' });
  const raw = toBuffer(body);
  return [`t=${timestampSeconds}`, ...list.map((s) => `v1=${hmac(s, timestampSeconds, raw).toString('hex')}`)].join(
    ',',
  );
}

/** Remembers accepted signatures until they leave the replay window. */
export interface ReplayCache {
  /**
   * @param key - the accepted signature
   * @param expiresAtMs - when it can be forgotten
   * @returns false when the key was already there (a replay)
   */
  remember(key: string, expiresAtMs: number): boolean | Promise<boolean>;
  /**
   * Forgets a key: the receiver accepted a signature but could not record the event (its store was down), so the
   * sender's retry of the very same request must not count as a replay.
   * @param key - a key `remember` accepted
   */
  forget?(key: string): void | Promise<void>;
}

/** A {@link ReplayCache} in memory (one process; use a shared store when several servers receive webhooks). */
export class MemoryReplayCache implements ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #now: () => number;
  /** @param now - ms since the epoch; default `Date.now` */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }
  /** {@inheritDoc ReplayCache.remember} */
  remember(key: string, expiresAtMs: number): boolean {
    const now = this.#now();
    for (const [k, exp] of this.#seen) {
      if (exp > now) break; // insertion order ≈ expiry order
      this.#seen.delete(k);
    }
    const exp = this.#seen.get(key);
    if (exp !== undefined && exp > now) return false;
    this.#seen.set(key, expiresAtMs);
    return true;
  }
  /** {@inheritDoc ReplayCache.forget} */
  forget(key: string): void {
    this.#seen.delete(key);
  }
}

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** The raw request body, exactly as received. */
  body: string | Uint8Array;
  /** The `CDSS-Signature` header value (undefined when absent). */
  signature: string | string[] | undefined;
  /** Accepted secrets (several during a rotation). */
  secrets: string | readonly string[];
  /** Allowed clock difference, seconds. Default 300. */
  toleranceSeconds?: number;
  /** Refuses a second delivery of the same signature within the window. Strongly recommended. */
  replayCache?: ReplayCache;
  /** ms since the epoch; default `Date.now`. */
  now?: () => number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Verifies a webhook. Resolves only for an authentic, fresh, first delivery.
 * @param options - see {@link VerifyWebhookOptions}
 * @returns the signed timestamp (unix seconds)
 * @throws {@link WebhookVerificationError} otherwise
 */
export async function verifyWebhook(options: VerifyWebhookOptions): Promise<number> {
  const header = Array.isArray(options.signature) ? options.signature[0] : options.signature;
  if (!header) throw new WebhookVerificationError('missing', `no ${SIGNATURE_HEADER} header`);
  let timestamp: number | undefined;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && HEX64.test(value)) candidates.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || candidates.length === 0)
    throw new WebhookVerificationError('malformed', `${SIGNATURE_HEADER} needs t=<seconds> and v1=<hex sha256>`);
  const now = (options.now ?? Date.now)();
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now / 1000 - timestamp) > tolerance)
    throw new WebhookVerificationError('expired', `timestamp outside the ${tolerance} s window`);
  const raw = toBuffer(options.body);
  const secrets = typeof options.secrets === 'string' ? [options.secrets] : options.secrets;
  let matched: Buffer | undefined;
  for (const secret of secrets) {
    const expected = hmac(secret, timestamp, raw);
    for (const c of candidates) {
      // both are 32 bytes (HEX64), as timingSafeEqual requires; compare all to keep timing independent of position
      if (timingSafeEqual(expected, c) && !matched) matched = c;
    }
  }
  if (!matched) throw new WebhookVerificationError('mismatch', 'signature does not match');
  if (options.replayCache) {
    const fresh = await options.replayCache.remember(matched.toString('hex'), (timestamp + tolerance) * 1000 + 1000);
    if (!fresh) throw new WebhookVerificationError('replayed', 'this signature was already accepted');
  }
  return timestamp;
}

/** A `fetch`-compatible function (Node 20's global `fetch` by default). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: Buffer; signal: AbortSignal },
) => Promise<{
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

/** Options of {@link WebhookSender}. */
export interface WebhookSenderOptions {
  /** Signing secret(s), at least 16 characters. Required. */
  secret: string | readonly string[];
  /** Tries per delivery, the first included. Default 5. */
  maxAttempts?: number;
  /** First backoff delay (doubling, full jitter), ms. Default 500. */
  baseDelayMs?: number;
  /** Largest backoff delay, ms (also caps `Retry-After`). Default 30 000. */
  maxDelayMs?: number;
  /** Per-attempt timeout, ms. Default 10 000. */
  timeoutMs?: number;
  /** Default `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Default: `setTimeout`. */
  sleep?: (ms: number) => Promise<void>;
  /** ms since the epoch; default `Date.now`. */
  now?: () => number;
}

const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * Delivers protocol messages as signed webhooks, with retries and backoff.
 * @example
 * ```ts
 * const sender = new WebhookSender({ secret: process.env.CDSS_WEBHOOK_SECRET! });
 * await sender.deliver('https://cdss.example.org/api/ai/webhook', event);
 * ```
 */
export class WebhookSender {
  readonly #o: Required<Omit<WebhookSenderOptions, 'fetch'>> & { fetch: FetchLike };

  /** @param options - see {@link WebhookSenderOptions} */
  constructor(options: WebhookSenderOptions) {
    signWebhook('', options.secret, 0); // validates the secrets now
    this.#o = {
      secret: options.secret,
      maxAttempts: options.maxAttempts ?? 5,
      baseDelayMs: options.baseDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      fetch: options.fetch ?? (globalThis.fetch as unknown as FetchLike),
      sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      now: options.now ?? Date.now,
    };
  }

  /**
   * POSTs the message, signed afresh for each attempt (so each carries a current timestamp).
   * @param url - the receiver
   * @param message - a validated protocol message
   * @returns the final status and the number of attempts
   * @throws `HttpError` (`@cdss/core`) for a status that retrying cannot fix (e.g. 400, 401); `RetryError` (`@cdss/core`) when attempts run out
   */
  async deliver(url: string, message: JobMessage): Promise<{ status: number; attempts: number }> {
    const body = encodeMessage(message);
    const errors: unknown[] = [];
    for (let attempt = 1; attempt <= this.#o.maxAttempts; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        const response = await this.#o.fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(body, this.#o.secret, Math.floor(this.#o.now() / 1000)),
            [EVENT_TYPE_HEADER]: message.type,
            [MESSAGE_ID_HEADER]: message.messageId,
          },
          body,
          signal: AbortSignal.timeout(this.#o.timeoutMs),
        });
        if (response.status >= 200 && response.status < 300) return { status: response.status, attempts: attempt };
        const error = new HttpError({
          method: 'POST',
          url,
          status: response.status,
          statusText: response.statusText,
          responseBody: (await response.text().catch(() => '')).slice(0, 500),
        });
        if (!RETRYABLE.has(response.status)) throw error;
        errors.push(error);
        const ra = response.headers.get('retry-after');
        if (ra !== null && /^\d+$/.test(ra)) retryAfterMs = Number(ra) * 1000;
      } catch (error) {
        if (HttpError.isInstance(error) && error.status !== undefined && !RETRYABLE.has(error.status)) throw error;
        if (!HttpError.isInstance(error))
          errors.push(
            new HttpError({
              method: 'POST',
              url,
              cause: error,
              message: `POST ${url}: ${error instanceof Error ? error.message : String(error)}`,
            }),
          );
      }
      if (attempt < this.#o.maxAttempts) {
        const backoff = Math.random() * Math.min(this.#o.maxDelayMs, this.#o.baseDelayMs * 2 ** (attempt - 1));
        await this.#o.sleep(Math.min(this.#o.maxDelayMs, Math.max(backoff, retryAfterMs ?? 0)));
      }
    }
    throw new RetryError(errors);
  }
}
