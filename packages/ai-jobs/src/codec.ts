/**
 * Encoding and decoding of protocol messages: JSON bodies, validated with the zod schemas on the way in.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { compileFastCheck, type FastCheck } from './fast-check.js';
import {
  MESSAGE_SCHEMAS,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  analysisAcceptedSchema,
  analysisSucceededSchema,
  jobMessageSchema,
  type AnalysisAccepted,
  type AnalysisSucceeded,
  type AnalysisRequested,
  type JobMessage,
} from './protocol.js';

type ParseResult = ReturnType<typeof jobMessageSchema.safeParse>;

/** The compiled check of each message type (see `fast-check.ts`); absent where a schema could not be compiled. */
const FAST_CHECKS: Partial<Record<string, FastCheck>> = {};
for (const [type, schema] of Object.entries(MESSAGE_SCHEMAS)) {
  const check = compileFastCheck(schema);
  if (check) FAST_CHECKS[type] = check;
}

/** True when `value` (fresh from JSON.parse) is certainly a valid message, as it is; false means ask zod. */
function fastValid(value: unknown): boolean {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const check = typeof type === 'string' && Object.hasOwn(FAST_CHECKS, type) ? FAST_CHECKS[type] : undefined;
  return check !== undefined && check(value);
}

/**
 * Parses with the schema of the message's own `type` (a direct lookup; the discriminated union costs about as much
 * again), falling back to the union for an unknown or missing type so the error names the discriminator.
 */
function parseMessage(value: unknown): ParseResult {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const schema =
    typeof type === 'string' && Object.hasOwn(MESSAGE_SCHEMAS, type)
      ? MESSAGE_SCHEMAS[type as keyof typeof MESSAGE_SCHEMAS]
      : undefined;
  return (schema ?? jobMessageSchema).safeParse(value) as ParseResult;
}

/**
 * Marks messages this module validated, so stores and encoders need not parse them again. A non-enumerable symbol
 * property: JSON.stringify and object spread leave it behind, so an edited copy (`{ ...message, x }`) is validated
 * afresh. (Cheaper than a WeakSet plus deep freezing, which cost about 7 % of the CPU of an end-to-end job.)
 */
const VALIDATED = Symbol('cdss.ai-jobs.validated');

function trusted<T extends JobMessage>(message: T): T {
  Object.defineProperty(message, VALIDATED, { value: true });
  return message;
}

/**
 * True for a message returned by {@link decodeMessage} or {@link createMessage} (not a copy of one): it needs no
 * second parse.
 * @internal
 */
export function isValidated(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as Record<symbol, unknown>)[VALIDATED] === true;
}

/**
 * Parses `input` with `schema`.
 * @throws `ValidationError` (`@cdss/core`) with `message` when it does not match
 * @internal
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, message: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw ValidationError.fromZod(result.error, message);
  return result.data;
}

/**
 * A message {@link isValidated} marks, as it is; anything else parsed with `schema` (what the stores take in).
 * @throws `ValidationError` (`@cdss/core`) with `error` when it does not match
 * @internal
 */
export function checkedMessage<S extends z.ZodType>(schema: S, message: z.output<S>, error: string): z.output<S> {
  return isValidated(message) ? message : parseOrThrow(schema, message, error);
}

let lastIsoMs = Number.NaN;
let lastIso = '';

/**
 * `new Date(ms).toISOString()`, remembering the last answer: under load many messages and store updates share a
 * millisecond, and formatting a date was about 2 % of the CPU of a quick job. Throws `RangeError` for an invalid
 * time, like `toISOString`.
 * @internal
 */
export function isoTime(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString();
    lastIsoMs = ms;
  }
  return lastIso;
}

/** Why a body was not accepted as a protocol message; also the dead-letter reason header's value. */
export type DecodeFailureReason = 'malformed' | 'unsupported-version' | 'schema-invalid';

/** The outcome of {@link decodeMessage}. */
export type DecodeResult =
  | { ok: true; message: JobMessage }
  | { ok: false; reason: DecodeFailureReason; detail: string; error: ValidationError | SyntaxError };

/**
 * Decodes and validates a message body. Never throws: poison messages must not stop a consumer.
 * @param body - the raw bytes (UTF-8 JSON)
 * @returns the message, or why it is not one (with a PHI-free detail: paths and codes, never values)
 */
export function decodeMessage(body: Uint8Array | string): DecodeResult {
  let parsed: unknown;
  try {
    // a Buffer (what the transports deliver) is decoded in place: `Buffer.from(buffer)` would copy it first
    const text =
      typeof body === 'string'
        ? body
        : Buffer.isBuffer(body)
          ? body.toString('utf8')
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    parsed = JSON.parse(text);
  } catch (error) {
    const err = error instanceof SyntaxError ? error : new SyntaxError(String(error));
    return { ok: false, reason: 'malformed', detail: `not JSON: ${err.message.slice(0, 200)}`, error: err };
  }
  if (typeof parsed === 'object' && parsed !== null && 'version' in parsed) {
    const { protocol, version } = parsed as { protocol?: unknown; version?: unknown };
    if (protocol === PROTOCOL_NAME && version !== PROTOCOL_VERSION) {
      const error = new ValidationError(`unsupported protocol version ${JSON.stringify(version)}`, [
        { path: 'version', message: `expected ${PROTOCOL_VERSION}`, code: 'invalid_value' },
      ]);
      return { ok: false, reason: 'unsupported-version', detail: error.message, error };
    }
  }
  // the compiled check accepts most valid messages without zod's allocations; anything it is unsure of goes to zod,
  // which decides and explains. A JSON.parse result is fresh and plain, so it can be used as it is.
  if (fastValid(parsed)) return { ok: true, message: trusted(parsed as JobMessage) };
  const result = parseMessage(parsed);
  if (!result.success) {
    const error = ValidationError.fromZod(result.error, 'message does not match the protocol');
    const detail = result.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`)
      .join('; ');
    return { ok: false, reason: 'schema-invalid', detail, error };
  }
  return { ok: true, message: trusted(result.data) };
}

/**
 * Validates and encodes a message as UTF-8 JSON.
 * @param message - the message
 * @returns the body bytes
 * @throws `ValidationError` (`@cdss/core`) when the message does not match the protocol (nothing is sent)
 */
export function encodeMessage(message: JobMessage): Buffer {
  if (isValidated(message)) return Buffer.from(JSON.stringify(message), 'utf8');
  const result = parseMessage(message);
  if (!result.success) throw ValidationError.fromZod(result.error, `invalid ${message.type} message`);
  return Buffer.from(JSON.stringify(result.data), 'utf8');
}

/**
 * Encodes a message that came out of {@link createMessage} or {@link decodeMessage} (already validated).
 * @internal
 */
export function encodeValidated(message: JobMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

/** The fields {@link createMessage} fills in. */
type EnvelopeFields = 'protocol' | 'version' | 'messageId' | 'sentAt';
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A protocol message without the envelope fields that {@link createMessage} fills in (`messageId`, `sentAt` optional). */
export type MessageInput = DistributiveOmit<JobMessage, EnvelopeFields> &
  Partial<Pick<JobMessage, 'messageId' | 'sentAt'>>;

/**
 * Builds a protocol message: fills in `protocol`, `version`, a fresh `messageId` and `sentAt`, then validates it.
 * @param input - the message without its envelope
 * @param now - the clock's time in ms (for `sentAt`)
 * @returns the validated message
 * @throws `ValidationError` (`@cdss/core`) when the result is not a valid message
 */
export function createMessage<M extends MessageInput>(
  input: M,
  now: number = Date.now(),
): Extract<JobMessage, { type: M['type'] }> {
  const candidate = {
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    messageId: randomUUID(),
    sentAt: isoTime(now),
    ...input,
  };
  const result = parseMessage(candidate);
  if (!result.success) throw ValidationError.fromZod(result.error, `invalid ${input.type} message`);
  return trusted(result.data) as Extract<JobMessage, { type: M['type'] }>;
}

/** The fields of an `analysis.requested` that its requester chooses. */
export type RequestedFields = Omit<AnalysisRequested, EnvelopeFields | 'type' | 'createdAt'>;

/**
 * Builds an `analysis.requested` from fields that `requestAnalysisInputSchema` validated: that schema checks each
 * field with `analysisRequestedSchema`'s own field schema (a test holds them together), and the envelope and
 * `createdAt` are made here, so the message needs no second parse.
 * @internal
 */
export function createRequested(fields: RequestedFields, now: number = Date.now()): AnalysisRequested {
  const at = isoTime(now);
  const { jobId, ...rest } = fields;
  return trusted({
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    messageId: randomUUID(),
    jobId,
    sentAt: at,
    type: 'analysis.requested',
    ...rest,
    createdAt: at,
  });
}

/**
 * Builds the `analysis.accepted` for a request that {@link decodeMessage} validated, from a worker id that
 * `analysisAcceptedSchema.shape.workerId` accepted (the worker checks it once, at construction): every field then
 * comes from validated data or is made here, so the message needs no parse of its own. An attempt that is not an
 * integer ≥ 1 (no transport delivers one) takes the validating path and throws.
 * @internal
 */
export function createAccepted(
  request: AnalysisRequested,
  workerId: string,
  attempt: number,
  now: number = Date.now(),
): AnalysisAccepted {
  if (!isValidated(request) || !Number.isInteger(attempt) || attempt < 1)
    return createMessage({ type: 'analysis.accepted', jobId: request.jobId, workerId, attempt }, now);
  return trusted({
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    messageId: randomUUID(),
    jobId: request.jobId,
    sentAt: isoTime(now),
    type: 'analysis.accepted',
    workerId,
    attempt,
  });
}

/**
 * Builds the `analysis.succeeded` for a request that {@link decodeMessage} validated and a worker id that
 * {@link checkWorkerId} accepted: only the handler's `result` is new, so only it is parsed (the envelope's
 * identifiers and timestamp are made here or come from validated data). An `attempt` (carried so the server learns
 * it when no `accepted` was published) that is not an integer ≥ 1 takes the validating path and throws.
 * @throws `ValidationError` (`@cdss/core`) when the result does not match the protocol
 * @internal
 */
export function createSucceeded(
  request: AnalysisRequested,
  workerId: string,
  result: unknown,
  now: number = Date.now(),
  attempt?: number,
): AnalysisSucceeded {
  if (!isValidated(request) || (attempt !== undefined && (!Number.isInteger(attempt) || attempt < 1)))
    return createMessage(
      {
        type: 'analysis.succeeded',
        jobId: request.jobId,
        workerId,
        ...(attempt === undefined ? {} : { attempt }),
        result: result as AnalysisSucceeded['result'],
      },
      now,
    );
  const checked = parseOrThrow(analysisSucceededSchema.shape.result, result, 'invalid analysis.succeeded message');
  return trusted({
    protocol: PROTOCOL_NAME,
    version: PROTOCOL_VERSION,
    messageId: randomUUID(),
    jobId: request.jobId,
    sentAt: isoTime(now),
    type: 'analysis.succeeded',
    workerId,
    ...(attempt === undefined ? {} : { attempt }),
    result: checked,
  });
}

/**
 * Checks a worker id once, so {@link createAccepted} can trust it.
 * @throws `ValidationError` (`@cdss/core`) when it is not a valid `workerId`
 * @internal
 */
export function checkWorkerId(workerId: string): string {
  return parseOrThrow(analysisAcceptedSchema.shape.workerId, workerId, 'invalid workerId');
}
