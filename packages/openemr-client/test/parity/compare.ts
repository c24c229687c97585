/**
 * How an emulator answer is held to a recorded one: same status, same kind of body, and the same body
 * shape (field names, JSON types, envelope, `links`, numbers vs strings, decimals, error shapes and
 * messages), with the short list of tolerated differences below (one place, documented in the sandbox's
 * OpenEMR README). Test-only.
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const DATETIME = /\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2})?/g;
const DATE = /\d{4}-\d{2}-\d{2}/g;
const REDACTED = /<redacted[^>]*>/g;
const GENERATED_QUERY = /([?&](?:code|launch|state|code_challenge|token_main)=)[^&]+/g;

/** One tolerated difference: why, and what it covers (nothing else is tolerated). */
export interface ToleratedDifference {
  id: string;
  /** Why, for the sandbox's OpenEMR README. */
  text: string;
  /** Body keys whose values are compared by JSON type only. */
  keys?: readonly string[];
  /** Parts of strings replaced by a placeholder on both sides before comparing. */
  patterns?: readonly (readonly [RegExp, string])[];
}

/**
 * The differences the parity suite tolerates, and why: the ONE list. The comparison below uses only these
 * keys and patterns (and the HTML, scope-list and error-page rules named here); the sandbox's OpenEMR README
 * shows this list, generated (test/parity/parity.test.ts fails when it is stale).
 */
export const TOLERATED_DIFFERENCES: readonly ToleratedDifference[] = [
  {
    id: 'generated-ids',
    text: 'Identifiers the server generates: UUIDs, client ids and secrets, registration tokens and paths, CSRF and launch tokens, authorization codes and `state`/`code_challenge` in redirects, access/refresh/id tokens, `jti`s, and the token audience (the client id) of an introspection (the recordings redact the secret ones).',
    keys: [
      'client_id',
      'client_secret',
      'registration_access_token',
      'registration_client_uri',
      'access_token',
      'refresh_token',
      'id_token',
      'jti',
      'aud',
    ],
    patterns: [
      [REDACTED, '<generated>'],
      [UUID, '<uuid>'],
      [GENERATED_QUERY, '$1<generated>'],
    ],
  },
  {
    id: 'clock',
    text: 'Times from the server clock: dates and date-times (in the same format), `exp`, `iat` and `client_id_issued_at`.',
    keys: ['exp', 'iat', 'client_id_issued_at'],
    patterns: [
      [DATETIME, '<datetime>'],
      [DATE, '<date>'],
    ],
  },
  {
    id: 'client-keys',
    text: "The client's own public keys echoed by a registration (`jwks`): the recording's key pair is not the run's.",
    keys: ['jwks'],
  },
  {
    id: 'html-markup',
    text: "HTML pages are compared by their forms (action, method, field names; every recorded field must be there). OpenEMR's markup and scripts are not emulated, and the emulator renders resource scopes as plain checkboxes where OpenEMR builds them with JavaScript.",
  },
  {
    id: 'scope-lists',
    text: '`scopes_supported` of the discovery documents: OpenEMR builds it from its configuration; compared as a list of strings, not item by item.',
  },
  {
    id: 'error-pages',
    text: 'PHP/SQL error pages (non-JSON bodies of server failures): compared by status and content type, not text.',
  },
];

/** Keys whose values the server generates (compared by JSON type only). */
const GENERATED_KEYS = new Set(TOLERATED_DIFFERENCES.flatMap((d) => d.keys ?? []));
const PATTERNS = TOLERATED_DIFFERENCES.flatMap((d) => d.patterns ?? []);

function normalize(text: string): string {
  return PATTERNS.reduce((out, [pattern, placeholder]) => out.replace(pattern, placeholder), text);
}

/**
 * The tolerated differences as the Markdown list of the sandbox's OpenEMR README.
 */
export function toleratedDifferencesMarkdown(): string {
  return TOLERATED_DIFFERENCES.map((d) => `- **${d.id}**: ${d.text}`).join('\n');
}

function type(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/**
 * The differences between a recorded JSON body and the emulator's, as readable lines ([] = same shape).
 * @param recorded - the recorded value
 * @param actual - the emulator's value
 * @param path - where in the body (for messages)
 */
export function shapeDifferences(recorded: unknown, actual: unknown, path = '$'): string[] {
  const key =
    path
      .split('.')
      .at(-1)
      ?.replace(/\[\d+\]$/, '') ?? '';
  if (key === 'scopes_supported') {
    const flat = (v: unknown): unknown[] => (Array.isArray(v) ? v.flat(2) : []);
    return type(actual) === type(recorded) && flat(actual).every((s) => typeof s === 'string')
      ? []
      : [`${path}: ${type(actual)}, recorded ${type(recorded)}`];
  }
  if (type(recorded) !== type(actual)) {
    return [
      `${path}: ${type(actual)} ${JSON.stringify(actual)?.slice(0, 80)}, recorded ${type(recorded)} ${JSON.stringify(recorded)?.slice(0, 80)}`,
    ];
  }
  if (GENERATED_KEYS.has(key)) return [];
  if (Array.isArray(recorded) && Array.isArray(actual)) {
    if (recorded.length !== actual.length) return [`${path}: ${actual.length} items, recorded ${recorded.length}`];
    return recorded.flatMap((r, i) => shapeDifferences(r, actual[i], `${path}[${i}]`));
  }
  if (recorded !== null && typeof recorded === 'object') {
    const r = recorded as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const missing = Object.keys(r).filter((k) => !(k in a));
    const extra = Object.keys(a).filter((k) => !(k in r));
    const out: string[] = [];
    if (missing.length > 0) out.push(`${path}: missing ${missing.join(', ')}`);
    if (extra.length > 0) out.push(`${path}: extra ${extra.join(', ')}`);
    for (const k of Object.keys(r)) if (k in a) out.push(...shapeDifferences(r[k], a[k], `${path}.${k}`));
    return out;
  }
  if (typeof recorded === 'string') {
    return normalize(recorded) === normalize(actual as string)
      ? []
      : [`${path}: ${JSON.stringify(actual).slice(0, 120)}, recorded ${JSON.stringify(recorded).slice(0, 120)}`];
  }
  return recorded === actual ? [] : [`${path}: ${JSON.stringify(actual)}, recorded ${JSON.stringify(recorded)}`];
}

/** The forms of an HTML page: action, method and field names. */
export function forms(html: string): { action: string; method: string; fields: Set<string> }[] {
  const out: { action: string; method: string; fields: Set<string> }[] = [];
  const re = /<form\b((?:[^>"']|"[^"]*"|'[^']*')*)>([\s\S]*?)<\/form>/gi;
  for (const m of html.matchAll(re)) {
    const attrs = m[1] ?? '';
    const action = (/action="([^"]*)"/i.exec(attrs)?.[1] ?? '').replace(/&amp;/g, '&');
    const method = (/method="([^"]*)"/i.exec(attrs)?.[1] ?? 'get').toLowerCase();
    const fields = new Set([...(m[2] ?? '').matchAll(/name="([^"]+)"/gi)].map((x) => x[1] ?? ''));
    out.push({ action: normalize(action.split('?')[0] ?? ''), method, fields });
  }
  return out;
}

/** The media type without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** A `Location` header with generated values replaced. */
export function normalizedLocation(location: string | undefined): string | undefined {
  return location === undefined ? undefined : normalize(location);
}
