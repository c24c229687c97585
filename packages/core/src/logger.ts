/**
 * The logger interface every CDSS package takes by injection, and the redaction that keeps PHI and secrets
 * out of anything logged.
 *
 * Redaction is by key name (case-insensitive, ignoring `-`, `_`, `.` and spaces, so `Set-Cookie`, `set_cookie`
 * and `setCookie` are one key) through nested objects and arrays, cycle-safe, plus pattern scrubbing of
 * bearer/basic credentials, JWTs and URL user-info inside every string. The key list is {@link REDACTED_KEYS}.
 * @packageDocumentation
 */

/**
 * A pino-compatible logger: `logger.info({ status: 200 }, 'request done')` or `logger.info('message')`.
 * A `pino()` instance satisfies it as is.
 * @category Logging
 */
export interface Logger {
  /** Verbose diagnostics. */
  debug(obj: object | string, msg?: string): void;
  /** Normal operation. */
  info(obj: object | string, msg?: string): void;
  /** Something went wrong but was handled (e.g. a retry). */
  warn(obj: object | string, msg?: string): void;
  /** An operation failed. */
  error(obj: object | string, msg?: string): void;
  /** A logger whose lines all carry `bindings` (pino's `child`). */
  child?(bindings: object): Logger;
}

const noop = (): void => undefined;

/**
 * A logger that drops everything: the default of every package.
 * @category Logging
 */
export const noopLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => noopLogger,
};

/** The text that replaces a redacted value. */
export const REDACTED = '[REDACTED]';

/**
 * Keys whose values are always replaced by {@link REDACTED}, written normalised (lower case, without `-`, `_`,
 * `.` or spaces): `access_token`, `Access-Token` and `accessToken` all match `accesstoken`.
 *
 * - **Secrets**: authorization and cookie headers, tokens, passwords, client secrets, API keys, private keys.
 * - **PHI, names**: `name`, `firstName`/`fname`, `lastName`/`lname`, `middleName`/`mname`, `given`, `family`,
 *   `fullName`, `patientName`, `maidenName`, `mothersName`, `guardianName`, `alias`.
 * - **PHI, birth dates**: `dob`, `birthDate`, `dateOfBirth`, `DOB`, `patientBirthDate`.
 * - **PHI, addresses**: `address`, `street`, `city`, `postalCode`, `postal_code`, `zip`, `zipCode`, `county`.
 * - **PHI, contact**: `phone*` (every key starting with `phone`), `mobile`, `telecom`, `fax`, `email*`.
 * - **PHI, identifiers**: `ssn`, `socialSecurityNumber`, `mrn`, `medicalRecordNumber`, `pid`, `pubpid`, `uuid`,
 *   `puuid`, `patientId`, `patientUuid`, `identifier`, `otherPatientIds`, `driversLicense`, `insuranceNumber`.
 * - **DICOM JSON tags** of the same data: `00100010` PatientName, `00100020` PatientID, `00100030` birth date,
 *   `00101000`/`00101001`/`00101002` other IDs and names, `00101040` address, `00102154` telephone numbers,
 *   `00101060` mother's birth name, `00100050` insurance plan ID.
 *
 * Plus any key that ends with `token`, `password`, `secret`, `apikey` or `cookie`, or starts with `phone` or
 * `email`.
 * @category Logging
 */
export const REDACTED_KEYS: ReadonlySet<string> = new Set([
  // secrets
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'xapikey',
  'apikey',
  'xauthtoken',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'password',
  'passwd',
  'pwd',
  'secret',
  'clientsecret',
  'privatekey',
  'credentials',
  'sessionid',
  // names
  'name',
  'firstname',
  'fname',
  'lastname',
  'lname',
  'middlename',
  'mname',
  'given',
  'givenname',
  'family',
  'familyname',
  'fullname',
  'patientname',
  'maidenname',
  'mothersname',
  'mothersmaidenname',
  'guardianname',
  'guardiansname',
  'alias',
  // birth dates
  'dob',
  'birthdate',
  'dateofbirth',
  'patientbirthdate',
  // addresses
  'address',
  'addresses',
  'patientaddress',
  'street',
  'streetaddress',
  'addressline1',
  'addressline2',
  'city',
  'postalcode',
  'zip',
  'zipcode',
  'county',
  // contact
  'mobile',
  'telecom',
  'fax',
  'contactpoint',
  // identifiers
  'ssn',
  'socialsecuritynumber',
  'mrn',
  'medicalrecordnumber',
  'pid',
  'pubpid',
  'uuid',
  'puuid',
  'patientid',
  'patientuuid',
  'identifier',
  'identifiers',
  'otherpatientids',
  'driverslicense',
  'insurancenumber',
  // DICOM JSON tags (PS3.18 F.2): PatientName, PatientID, birth date, insurance plan, other IDs/names,
  // other ID sequence, address, mother's birth name, telephone numbers
  '00100010',
  '00100020',
  '00100030',
  '00100050',
  '00101000',
  '00101001',
  '00101002',
  '00101040',
  '00101060',
  '00102154',
]);

const SUFFIXES = ['token', 'password', 'secret', 'apikey', 'cookie'];
const PREFIXES = ['phone', 'email'];

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_.\s]/g, '');
}

/**
 * True when a value stored under `key` is redacted by {@link redact}.
 * @param key - an object key or header name
 */
export function isRedactedKey(key: string): boolean {
  const k = normaliseKey(key);
  return REDACTED_KEYS.has(k) || SUFFIXES.some((s) => k.endsWith(s)) || PREFIXES.some((p) => k.startsWith(p));
}

// Scheme + credentials in free text: `Bearer abc.def`, `Basic dXNlcjpwYXNz`.
const AUTH_SCHEME = /\b(Bearer|Basic|Digest|Negotiate)\s+([A-Za-z0-9\-._~+/]+=*)/gi;
// A JWT anywhere (three base64url parts, the first starting with `eyJ`, i.e. `{"`).
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
// URL user-info: scheme://user:pass@host
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+(?::[^\s/@]*)?@/gi;
// key=value secrets inside query strings or free text
const SECRET_PARAM =
  /\b(access_token|refresh_token|id_token|token|api_key|apikey|password|client_secret)=([^&\s#"']+)/gi;

/**
 * Scrubs credentials out of free text: `Bearer`/`Basic` credentials, JWTs, URL user-info and
 * `token=`/`password=`/`client_secret=`-style parameters.
 * @param text - any string
 * @returns the string with each credential replaced by {@link REDACTED}
 * @category Logging
 */
export function scrubString(text: string): string {
  if (text.length < 6) return text;
  return (
    text
      .replace(JWT, REDACTED)
      // A lower-case word after "basic" is prose ("basic information"), not a credential.
      .replace(AUTH_SCHEME, (match, scheme: string, credential: string) =>
        scheme.toLowerCase() !== 'bearer' && /^[a-z]+$/.test(credential) ? match : `${scheme} ${REDACTED}`,
      )
      .replace(URL_USERINFO, (_m, scheme: string) => `${scheme}${REDACTED}@`)
      .replace(SECRET_PARAM, (_m, key: string) => `${key}=${REDACTED}`)
  );
}

function redactInner(value: unknown, seen: WeakMap<object, unknown>): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (typeof value !== 'object' || value === null) return value;
  const known = seen.get(value);
  if (known !== undefined) return '[Circular]';
  if (value instanceof Date) return new Date(value.getTime());
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) return `[Binary ${value.byteLength} bytes]`;
  if (Array.isArray(value) || value instanceof Set) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(redactInner(item, seen));
    seen.delete(value);
    return out;
  }
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  if (value instanceof Error) {
    out['name'] = value.name;
    out['message'] = scrubString(value.message);
    if (value.stack !== undefined) out['stack'] = scrubString(value.stack);
  }
  const entries: Iterable<[unknown, unknown]> = value instanceof Map ? value.entries() : Object.entries(value);
  for (const [rawKey, item] of entries) {
    const key = String(rawKey);
    if (value instanceof Error && (key === 'name' || key === 'message' || key === 'stack')) continue;
    if (isRedactedKey(key) && item !== undefined && item !== null) out[key] = REDACTED;
    else out[key] = redactInner(item, seen);
  }
  seen.delete(value);
  return out;
}

/**
 * Returns a deep copy of `value` with PHI and secrets masked: every key in {@link REDACTED_KEYS} (and the
 * prefix/suffix rules) has its value replaced by `'[REDACTED]'`, and every string is passed through
 * {@link scrubString}. Cycles become `'[Circular]'`, binary data `'[Binary n bytes]'`, errors plain objects
 * with `name`, `message` and `stack`. The input is never modified.
 *
 * @example
 * ```ts
 * redact({ headers: { Authorization: 'Bearer abc' }, patient: { name: 'Ada', dob: '1970-01-01', sex: 'F' } });
 * // { headers: { Authorization: '[REDACTED]' }, patient: { name: '[REDACTED]', dob: '[REDACTED]', sex: 'F' } }
 * ```
 * @param value - anything
 * @returns the redacted copy
 * @category Logging
 */
export function redact<T>(value: T): T {
  return redactInner(value, new WeakMap()) as T;
}

/**
 * A {@link Logger} that redacts, as made by {@link createRedactingLogger}; its children redact too.
 * @category Logging
 */
export interface RedactingLogger extends Logger {
  /**
   * A child logger whose lines carry the (redacted) `bindings`.
   * @param bindings - fields added to every line
   */
  child(bindings: object): RedactingLogger;
}

/**
 * Wraps a logger so that every object and message it receives is passed through {@link redact} first.
 * Children made with `child(bindings)` redact too.
 * @param logger - the logger to protect, e.g. a pino instance
 * @returns a logger that never forwards PHI or secrets found by key or pattern
 * @category Logging
 */
export function createRedactingLogger(logger: Logger): RedactingLogger {
  const wrap =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: object | string, msg?: string): void => {
      const safeObj = typeof obj === 'string' ? scrubString(obj) : (redact(obj) as object);
      if (msg === undefined) logger[level](safeObj);
      else logger[level](safeObj, scrubString(msg));
    };
  return {
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
    child: (bindings: object): RedactingLogger => {
      const safe = redact(bindings);
      if (logger.child) return createRedactingLogger(logger.child(safe));
      return createRedactingLogger(bindLogger(logger, safe));
    },
  };
}

function bindLogger(logger: Logger, bindings: object): Logger {
  const wrap =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') logger[level]({ ...bindings }, obj);
      else if (msg === undefined) logger[level]({ ...bindings, ...obj });
      else logger[level]({ ...bindings, ...obj }, msg);
    };
  return {
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
    child: (more: object) => bindLogger(logger, { ...bindings, ...more }),
  };
}
