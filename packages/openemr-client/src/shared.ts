/**
 * What the namespaces share: the context they run in, per-call options, input parsing, and writes confirmed
 * by reading back. Internal to the package.
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';
import type { z } from 'zod';
import { OpenEmrUnknownOutcomeError, isTransportUnknown, isUnknownOutcome, type StandardApiCaller } from './http.js';
import type { OpenEmrProfile } from './profiles.js';
import { idInputSchema, uuidSchema } from './schemas.js';

/** Per-call options of writes that support the optimistic lost-update check. */
export interface WriteOptions {
  /**
   * Opt-in optimistic check: the {@link recordVersion} of the record as you read it. The client reads the
   * record again just before writing and refuses with {@link OpenEmrConflictError} if it changed.
   * OpenEMR ignores `If-Match`, so a write that lands between that read and this write is not detected.
   */
  expectedVersion?: string | undefined;
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
}

/** Per-call options of reads. */
export interface ReadOptions {
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
}

/**
 * Parses caller input with a schema.
 * @throws {@link ValidationError} naming the fields
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid ${what}`);
  return parsed.data;
}

/** A numeric id given by a caller, as the route needs it. */
export const id = (value: number | string, field: string): string => {
  const parsed = idInputSchema.safeParse(value);
  if (!parsed.success)
    throw new ValidationError(`Invalid ${field}`, [
      { path: field, message: 'must be a positive numeric id', code: 'invalid_format' },
    ]);
  return parsed.data;
};
export const uuid = (value: string, field: string): string => {
  const parsed = uuidSchema.safeParse(value);
  if (!parsed.success)
    throw new ValidationError(`Invalid ${field}`, [{ path: field, message: 'must be a UUID', code: 'invalid_format' }]);
  return parsed.data;
};

/** Context shared by the namespaces. */
export interface Ctx {
  api: StandardApiCaller;
  /** The release profile (detected on first use when the option is `auto`). */
  profile(signal?: AbortSignal): Promise<OpenEmrProfile>;
  /** Who encounter updates are made as. */
  user: { username: string | undefined; group: string };
  documentCategory: string;
}

/**
 * Sends a write and, when its outcome is unknown (a 5xx, no answer, an answer the client cannot read), reads
 * back instead of re-sending: `confirm` returns what is stored, or `undefined` when the write is not there.
 * @param operation - for errors, e.g. `vitals create`
 * @param write - sends the write once
 * @param confirm - reads back; omitted when the write cannot be told apart from other rows
 * @throws the write's error when the read-back shows nothing was stored
 * @throws the write's `TimeoutError`/`HttpError` 5xx, or {@link OpenEmrUnknownOutcomeError} for an unreadable
 *   answer, when the read-back cannot tell (the write was sent once)
 */
export async function confirmedWrite<T>(
  operation: string,
  write: () => Promise<T>,
  confirm: (() => Promise<T | undefined>) | undefined,
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!isUnknownOutcome(error)) throw error;
    // Still unknown: a timeout or a 5xx stays itself (callers' idempotency logic knows those); an unreadable
    // answer becomes OpenEmrUnknownOutcomeError.
    const unknown = (): unknown =>
      isTransportUnknown(error) ? error : new OpenEmrUnknownOutcomeError(operation, error);
    if (confirm === undefined) throw unknown();
    let stored: T | undefined;
    try {
      stored = await confirm();
    } catch {
      throw unknown();
    }
    if (stored === undefined) throw error;
    return stored;
  }
}

/** True when `stored` holds every value that was `sent` (numbers compared as numbers: `150.5` = `150.500000`). */
export function holds(stored: object, sent: Record<string, unknown>): boolean {
  const row = stored as Record<string, unknown>;
  return Object.entries(sent).every(([k, v]) => {
    const s = row[k];
    if (v === undefined) return true;
    if (v === null) return s === null || s === '' || s === undefined;
    const a = String(v);
    const b = s === null || s === undefined ? '' : String(s);
    if (a === b) return true;
    // Dates come back with a time (`2025-09-01` is stored as `2025-09-01 00:00:00`).
    if (/^\d{4}-\d{2}-\d{2}$/.test(a) && b.startsWith(`${a} `)) return true;
    return a.trim() !== '' && b.trim() !== '' && Number.isFinite(Number(a)) && Number(a) === Number(b);
  });
}
