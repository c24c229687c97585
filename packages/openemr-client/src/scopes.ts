/**
 * Builds OpenEMR scope strings (notes §2.5). SMART v1 uses `.read` / `.write`; SMART v2 uses the letters
 * `c r u d s` in that strict order (OpenEMR rejects `.sr` with `invalid_scope`), so the builder sorts them.
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';

/** A permission letter of SMART v2. */
export type ScopePermission = 'c' | 'r' | 'u' | 'd' | 's';

/** Scope syntax version. */
export type ScopeVersion = 'v1' | 'v2';

/** Standard-API resources (lower case) with the most permissions OpenEMR grants on each. */
export const STANDARD_API_MAX_PERMISSIONS = {
  allergy: 'cruds',
  appointment: 'cruds',
  encounter: 'crus',
  facility: 'crus',
  medical_problem: 'cruds',
  medication: 'cruds',
  patient: 'crus',
  practitioner: 'crus',
  prescription: 'crds',
  procedure: 'rs',
  soap_note: 'crus',
  vital: 'crus',
  list: 'r',
  user: 'rs',
} as const;

const ORDER = 'cruds';

/**
 * Orders permission letters as OpenEMR requires (`c r u d s`), removing duplicates.
 * @param letters - e.g. `['s', 'r']` or `'sr'`
 * @returns e.g. `rs`
 * @throws {@link ValidationError} on a letter outside `cruds`
 */
export function orderPermissions(letters: string | readonly string[]): string {
  const set = new Set(typeof letters === 'string' ? [...letters] : letters);
  for (const l of set) {
    if (!ORDER.includes(l) || l.length !== 1) {
      throw new ValidationError('Invalid scope permission', [
        { path: 'permissions', message: `unknown letter ${l}`, code: 'invalid_value' },
      ]);
    }
  }
  return [...ORDER].filter((l) => set.has(l)).join('');
}

/**
 * One resource scope, e.g. `resourceScope('user', 'patient', 'rs')` → `user/patient.rs`.
 * In v1 syntax, any of `r`/`s` gives `.read` and any of `c`/`u`/`d` gives `.write` (two scopes when both).
 * @param context - `user`, `patient` or `system`
 * @param resource - `patient` (standard API, lower case) or `Patient` (FHIR)
 * @param permissions - letters from `cruds`, any order
 * @param version - `v2` (default) or `v1`
 * @returns one or two scope strings
 */
export function resourceScope(
  context: 'user' | 'patient' | 'system',
  resource: string,
  permissions: string | readonly ScopePermission[],
  version: ScopeVersion = 'v2',
): string[] {
  if (!/^[A-Za-z_*]+$/.test(resource)) {
    throw new ValidationError('Invalid scope resource', [
      { path: 'resource', message: 'letters and _ only', code: 'invalid_value' },
    ]);
  }
  const ordered = orderPermissions(permissions);
  if (ordered === '') return [];
  if (version === 'v2') return [`${context}/${resource}.${ordered}`];
  const out: string[] = [];
  if (/[rs]/.test(ordered)) out.push(`${context}/${resource}.read`);
  if (/[cud]/.test(ordered)) out.push(`${context}/${resource}.write`);
  return out;
}

/** Options of {@link buildScopes}. */
export interface ScopeBuilderOptions {
  /** `v2` (default) or `v1`. */
  version?: ScopeVersion | undefined;
  /** Include `openid` (and `fhirUser`). Default true. */
  openid?: boolean | undefined;
  /** Include `offline_access` to get a refresh token. Default true. */
  offlineAccess?: boolean | undefined;
  /** Include `api:oemr` (standard API). Default true when `standard` has entries. */
  standardApi?: boolean | undefined;
  /** Include `api:fhir`. Default true when `fhir` has entries. */
  fhirApi?: boolean | undefined;
  /** Context of resource scopes. Default `user`. */
  context?: 'user' | 'patient' | 'system' | undefined;
  /** Standard-API resources and their permission letters, e.g. `{ patient: 'crus', vital: 'crs' }`. */
  standard?: Readonly<Record<string, string>> | undefined;
  /** FHIR resources and their letters, e.g. `{ Patient: 'rs', Observation: 'rs' }`. */
  fhir?: Readonly<Record<string, string>> | undefined;
  /** More scopes to add verbatim. */
  extra?: readonly string[] | undefined;
}

/**
 * Builds a space-separated scope string.
 * @param options - what to include
 * @returns e.g. `openid fhirUser offline_access api:oemr user/patient.crus`
 * @example
 * ```ts
 * buildScopes({ standard: { patient: 'rs', vital: 'crus' }, fhir: { Observation: 'rs' } });
 * ```
 */
export function buildScopes(options: ScopeBuilderOptions = {}): string {
  const version = options.version ?? 'v2';
  const context = options.context ?? 'user';
  const standard = Object.entries(options.standard ?? {});
  const fhir = Object.entries(options.fhir ?? {});
  const scopes: string[] = [];
  if (options.openid ?? true) scopes.push('openid', 'fhirUser');
  if ((options.offlineAccess ?? true) && context !== 'system') scopes.push('offline_access');
  if (options.standardApi ?? standard.length > 0) scopes.push('api:oemr');
  if (options.fhirApi ?? fhir.length > 0) scopes.push('api:fhir');
  for (const [resource, letters] of standard) scopes.push(...resourceScope(context, resource, letters, version));
  for (const [resource, letters] of fhir) scopes.push(...resourceScope(context, resource, letters, version));
  scopes.push(...(options.extra ?? []));
  return [...new Set(scopes)].join(' ');
}

const CDSS_STANDARD = {
  patient: 'crus',
  encounter: 'crus',
  vital: 'crus',
  soap_note: 'crus',
  medical_problem: 'cruds',
  allergy: 'cruds',
  medication: 'cruds',
  prescription: 'crds',
  procedure: 'rs',
  appointment: 'cruds',
  practitioner: 'crus',
  document: 'crs',
} as const;

const CDSS_FHIR = {
  Patient: 'crus',
  Organization: 'crus',
  Encounter: 'rs',
  Condition: 'rs',
  AllergyIntolerance: 'rs',
  MedicationRequest: 'rs',
  Observation: 'rs',
  Practitioner: 'crus',
  DocumentReference: 'rs',
} as const;

/**
 * The scopes the CDSS needs from OpenEMR, in a release's syntax: SMART v2 letters for 8.x, v1
 * `.read`/`.write` for 7.0 (7.0.1 refuses v2 scopes with `invalid_scope`, recorded-7.0.1 files 01 and 05).
 * @param version - `v2` (default) or `v1`
 * @returns the space-separated scopes
 */
export function cdssScopes(version: ScopeVersion = 'v2'): string {
  return buildScopes({
    version,
    standard: CDSS_STANDARD,
    fhir: CDSS_FHIR,
    // Binary has only the v1 form (notes §2.5): documents are read through it (recorded-8.0.0 file 67).
    extra: ['user/Binary.read'],
  });
}

/**
 * The scopes the CDSS needs from OpenEMR 8.x: read and write its clinical data and documents through the
 * standard API, read it through FHIR (and write Patient, Practitioner and Organization, the only FHIR writes
 * OpenEMR has), with a refresh token. For 7.0 use `cdssScopes('v1')`.
 */
export const CDSS_SCOPES: string = cdssScopes('v2');
