/**
 * Shared plumbing of the OpenEMR emulator: the request/response shapes of its framework-free core,
 * response helpers that reproduce OpenEMR's envelopes and error bodies per version, and the context
 * each route handler receives.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { OpenEmrStore } from './store.js';
import type { TokenRow, UserRow } from './types.js';

/**
 * The OpenEMR release the emulator reproduces: `7.0` (7.0.x as recorded on a running 7.0.1: the old
 * dispatcher), `8.0` (8.0.0 as recorded: the Symfony kernel and its defects) or `8.2` (the 8.2.0-dev code
 * and OpenAPI document: 8.0 with the recorded defects fixed and the prescription writes added).
 */
export type OpenEmrVersion = '7.0' | '8.0' | '8.2';

/** True for the 8.x releases (the Symfony kernel: error bodies, `links`, 200 for some validation errors). */
export function isKernel8(version: OpenEmrVersion): boolean {
  return version !== '7.0';
}

/** A request as the emulator core sees it (framework independent; Express and msw adapt to it). */
export interface EmulatorRequest {
  /** Upper-case HTTP method. */
  method: string;
  /** Path plus query string, e.g. `/apis/default/api/patient?_limit=10`. */
  url: string;
  /** Request headers, lower-case names. */
  headers: Record<string, string | undefined>;
  /** The body: text (JSON, forms) or bytes (multipart uploads), if any. */
  body?: string | Buffer | undefined;
  /** `scheme://host[:port]` the client used; builds absolute URLs (OpenEMR's `site_addr_oath`). */
  origin: string;
}

/** A response from the emulator core. `body` undefined means an empty body. */
export interface EmulatorResponse {
  status: number;
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
}

/**
 * The request body as text (bytes decoded as UTF-8).
 * @param req - the request
 */
export function bodyText(req: EmulatorRequest): string {
  const body = req.body;
  return body === undefined ? '' : typeof body === 'string' ? body : body.toString('utf8');
}

/** Token lifetimes in seconds (OpenEMR: access 3600, refresh 3 months, client credentials 300, code 60). */
export interface TokenLifetimes {
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  clientCredentialsSeconds: number;
  authorizationCodeSeconds: number;
}

/** OpenEMR's real lifetimes (notes §2.4). */
export const DEFAULT_TOKEN_LIFETIMES: TokenLifetimes = {
  accessTokenSeconds: 3600,
  refreshTokenSeconds: 90 * 24 * 3600,
  clientCredentialsSeconds: 300,
  authorizationCodeSeconds: 60,
};

/** Path parameters and parsed query of a matched route. */
export interface RouteInput {
  req: EmulatorRequest;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The authenticated token, on authenticated routes. */
  token: TokenRow | undefined;
  /** The token's user, if it has one. */
  user: UserRow | undefined;
  /** For a patient-context (SMART `patient/`) token: the only patient it may read. */
  patient?: string | undefined;
}

/** What every handler can use. */
export interface EngineContext {
  store: OpenEmrStore;
  version: OpenEmrVersion;
  site: string;
  now(): number;
  lifetimes: TokenLifetimes;
}

/**
 * A JSON response.
 * @param status - HTTP status
 * @param body - value to serialise
 * @param headers - extra headers
 */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): EmulatorResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** An empty-bodied response. */
export function empty(status: number): EmulatorResponse {
  return { status, headers: {} };
}

/**
 * OpenEMR's `{validationErrors, internalErrors, data, links}` envelope. `validationErrors` is `[]` when
 * there are none (PHP's empty array), an object keyed by field otherwise. 8.x always adds `links`: `[]`
 * unless the answer is a paginated list; 7.0 never has it (recorded on both).
 * @param version - the release
 * @param status - HTTP status
 * @param data - the `data` value
 * @param options - errors and links
 */
export function envelope(
  version: OpenEmrVersion,
  status: number,
  data: unknown,
  options: {
    validationErrors?: Record<string, unknown> | undefined;
    internalErrors?: string[] | undefined;
    links?: Record<string, string> | undefined;
  } = {},
): EmulatorResponse {
  const ve = options.validationErrors;
  const body: Record<string, unknown> = {
    validationErrors: ve && Object.keys(ve).length > 0 ? ve : [],
    internalErrors: options.internalErrors ?? [],
    data,
  };
  if (isKernel8(version)) body['links'] = options.links ?? [];
  return json(status, body);
}

/**
 * The 8.x kernel's error body (`ExceptionHandlerListener`: `{error, message, code}`), or the 7.0 equivalent.
 * @param version - the release
 * @param status - HTTP status
 * @param message - the message text
 */
export function kernelError(version: OpenEmrVersion, status: number, message: string): EmulatorResponse {
  if (isKernel8(version)) return json(status, { error: 'An error occurred', message, code: 0 });
  return status === 404 ? json(404, { error: 'not found', message }) : empty(status);
}

/** OAuth2 (league/oauth2-server) error body. */
export function oauthError(status: number, error: string, description: string, hint?: string): EmulatorResponse {
  const body: Record<string, string> = { error, error_description: description, message: description };
  if (hint !== undefined) body['hint'] = hint;
  return json(status, body);
}

/** MySQL `Y-m-d H:i:s` in UTC (the emulator's "server local time"). */
export function mysqlDateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** MySQL `Y-m-d`. */
export function mysqlDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * A UUID derived from `seed` (stable across restarts for seed data) or random.
 * @param seed - text to derive from; omit for a random UUID
 */
export function makeUuid(seed?: string): string {
  if (seed === undefined) return randomUUID();
  const h = createHash('sha1').update(`openemr-emulator:${seed}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

/**
 * Converts a body value to the string a MySQL column would hold.
 * @param value - the decoded JSON value
 */
export function columnText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
