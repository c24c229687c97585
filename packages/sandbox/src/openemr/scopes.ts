/**
 * OpenEMR's scope model (notes §2.5, §2.6): base scopes, SMART v1 (`.read`/`.write`) and v2 (`.cruds`,
 * letters in strict order) resource scopes, and the algorithm that derives the scope a request needs.
 */

/** Base and OIDC scopes the server knows. */
export const BASE_SCOPES = [
  'openid',
  'fhirUser',
  'online_access',
  'offline_access',
  'launch',
  'launch/patient',
  'launch/encounter',
  'api:oemr',
  'api:fhir',
  'api:port',
  'profile',
  'email',
  'phone',
  'address',
  'name',
  'given_name',
  'family_name',
  'nickname',
] as const;

/** The maximum permissions of the standard API, `ServerScopeListEntity::getV2ApiScopes`. */
export const STANDARD_API_PERMISSIONS: Readonly<Record<string, string>> = {
  allergy: 'cruds',
  appointment: 'cruds',
  dental_issue: 'cruds',
  document: 'crs',
  drug: 'rs',
  employer: 's',
  encounter: 'crus',
  facility: 'crus',
  immunization: 'rs',
  insurance: 'crus',
  insurance_company: 'crus',
  insurance_type: 's',
  list: 'r',
  medical_problem: 'cruds',
  medication: 'cruds',
  message: 'cud',
  patient: 'crus',
  practitioner: 'crus',
  prescription: 'crds',
  procedure: 'rs',
  product: 's',
  soap_note: 'crus',
  surgery: 'cruds',
  transaction: 'cuds',
  user: 'rs',
  version: 's',
  vital: 'crus',
};

/** FHIR resources with read/search scopes. */
export const FHIR_READ_RESOURCES = [
  'AllergyIntolerance',
  'Appointment',
  'Binary',
  'CarePlan',
  'CareTeam',
  'Condition',
  'Coverage',
  'Device',
  'DiagnosticReport',
  'DocumentReference',
  'Encounter',
  'Goal',
  'Group',
  'Immunization',
  'Location',
  'Media',
  'Medication',
  'MedicationDispense',
  'MedicationRequest',
  'Observation',
  'OperationDefinition',
  'Organization',
  'Patient',
  'Person',
  'Practitioner',
  'PractitionerRole',
  'Procedure',
  'Provenance',
  'Questionnaire',
  'QuestionnaireResponse',
  'RelatedPerson',
  'ServiceRequest',
  'Specimen',
  'ValueSet',
] as const;

/** FHIR resources OpenEMR can write. */
export const FHIR_WRITE_RESOURCES = ['Patient', 'Practitioner', 'Organization'] as const;

/** A parsed resource scope. */
export interface ResourceScope {
  context: 'user' | 'patient' | 'system';
  resource: string;
  /** Permission letters (v1 `.read` = `rs`, `.write` = `cud`), or an operation name like `$export`. */
  permissions: string;
}

const ORDER = 'cruds';

/**
 * Parses `user/patient.crus`, `patient/Observation.read`, `system/*.$export`.
 * @param scope - one scope string
 * @returns the parsed scope, `undefined` for base scopes
 * @throws Error for a malformed resource scope (e.g. letters out of order)
 */
export function parseResourceScope(scope: string): ResourceScope | undefined {
  const m = /^(user|patient|system)\/([A-Za-z_*]+)\.([$A-Za-z_-]+)(\?.*)?$/.exec(scope);
  if (!m) return undefined;
  const context = m[1] as ResourceScope['context'];
  const resource = m[2] ?? '';
  const perm = m[3] ?? '';
  if (perm === 'read') return { context, resource, permissions: 'rs' };
  if (perm === 'write') return { context, resource, permissions: 'cud' };
  if (perm.startsWith('$')) return { context, resource, permissions: perm };
  // v2: letters from `cruds`, each once, in that order.
  let last = -1;
  for (const letter of perm) {
    const at = ORDER.indexOf(letter);
    if (at <= last) throw new Error(`invalid scope permission order: ${scope}`);
    last = at;
  }
  return { context, resource, permissions: perm };
}

/**
 * True when the server knows `scope` (notes §2.5): base scopes, standard-API scopes within the server's
 * maximum permissions, FHIR read scopes and FHIR write scopes on Patient/Practitioner/Organization.
 * A malformed scope (e.g. letters out of order) is unknown: both map to `invalid_scope`. 7.0 knows only the
 * v1 forms (`.read`/`.write`, recorded-7.0.1 files 01, 05); `system/` scopes exist only while the global
 * `rest_system_scopes_api` is on (recorded-8.0.0 file 89).
 * @param scope - one scope string
 * @param options - `v2`: SMART v2 letters known; `system`: system scopes enabled
 */
export function isKnownScope(
  scope: string,
  options: { v2: boolean; system: boolean } = { v2: true, system: true },
): boolean {
  if ((BASE_SCOPES as readonly string[]).includes(scope)) return true;
  let parsed: ResourceScope | undefined;
  try {
    parsed = parseResourceScope(scope);
  } catch {
    return false;
  }
  if (!parsed) return false;
  if (parsed.context === 'system' && !options.system) return false;
  if (!options.v2 && !/\.(read|write|\$[\w-]+)$/.test(scope.split('?')[0] ?? '')) return false;
  const perms = parsed.permissions;
  if (perms.startsWith('$')) return true;
  const standardMax = STANDARD_API_PERMISSIONS[parsed.resource];
  // v1 `.read`/`.write` stand for any of their letters the resource has (7.0.1 registers user/patient.write).
  const v1 = /\.(read|write)$/.test(scope);
  if (standardMax !== undefined)
    return v1 ? [...perms].some((p) => standardMax.includes(p)) : [...perms].every((p) => standardMax.includes(p));
  if ((FHIR_READ_RESOURCES as readonly string[]).includes(parsed.resource) || parsed.resource === '*') {
    const writable = (FHIR_WRITE_RESOURCES as readonly string[]).includes(parsed.resource);
    return [...perms].every((p) => p === 'r' || p === 's' || (writable && parsed.context !== 'patient'));
  }
  return false;
}

/**
 * True when `granted` covers `needed` (same context and resource, or `*`; every needed letter present).
 * @param granted - the scopes of the token
 * @param context - the needed context
 * @param resource - the needed resource
 * @param permission - the needed letter or operation
 */
export function hasScope(granted: readonly string[], context: string, resource: string, permission: string): boolean {
  for (const scope of granted) {
    let parsed: ResourceScope | undefined;
    try {
      parsed = parseResourceScope(scope);
    } catch {
      continue;
    }
    if (!parsed || parsed.context !== context) continue;
    if (parsed.resource !== resource && parsed.resource !== '*') continue;
    if (
      parsed.permissions.startsWith('$') ? parsed.permissions === permission : parsed.permissions.includes(permission)
    )
      return true;
  }
  return false;
}

/**
 * The permission letter a request needs (notes §2.6): GET on an item `r`, GET on a collection `s`,
 * POST `c`, PUT/PATCH `u`, DELETE `d`.
 * @param method - HTTP method
 * @param endsWithParam - whether the route ends with a path parameter
 */
export function permissionFor(method: string, endsWithParam: boolean): string {
  switch (method) {
    case 'GET':
      return endsWithParam ? 'r' : 's';
    case 'POST':
      return 'c';
    case 'PUT':
    case 'PATCH':
      return 'u';
    case 'DELETE':
      return 'd';
    default:
      return 's';
  }
}

/**
 * The scopes OpenEMR lists as supported in its discovery documents, in its order (recorded-8.0.0 file 02):
 * base scopes, FHIR v1 read scopes, FHIR writes, v2 scopes (8.x), standard-API v1 then v2 scopes (8.x).
 * @param v2 - whether the release has SMART v2 scopes
 */
export function supportedScopes(v2: boolean): string[] {
  const out = [
    'openid',
    'profile',
    'name',
    'address',
    'given_name',
    'family_name',
    'nickname',
    'phone',
    'phone_verified',
    'email',
    'email_verified',
    'offline_access',
    'api:oemr',
    'api:fhir',
    'api:port',
    'fhirUser',
    'online_access',
    'launch',
    'launch/patient',
  ];
  for (const r of FHIR_READ_RESOURCES) out.push(`patient/${r}.read`, `user/${r}.read`);
  for (const r of FHIR_WRITE_RESOURCES) out.push(`user/${r}.write`);
  if (v2) for (const r of FHIR_READ_RESOURCES) out.push(`patient/${r}.rs`, `user/${r}.rs`);
  for (const [r, max] of Object.entries(STANDARD_API_PERMISSIONS)) {
    if (/[rs]/.test(max)) out.push(`user/${r}.read`);
    if (/[cud]/.test(max)) out.push(`user/${r}.write`);
  }
  if (v2) for (const [r, max] of Object.entries(STANDARD_API_PERMISSIONS)) out.push(`user/${r}.${max}`);
  return out;
}
