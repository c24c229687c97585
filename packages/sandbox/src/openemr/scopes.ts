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
 * A malformed scope (e.g. letters out of order) is unknown: both map to `invalid_scope`.
 * @param scope - one scope string
 */
export function isKnownScope(scope: string): boolean {
  if ((BASE_SCOPES as readonly string[]).includes(scope)) return true;
  let parsed: ResourceScope | undefined;
  try {
    parsed = parseResourceScope(scope);
  } catch {
    return false;
  }
  if (!parsed) return false;
  const perms = parsed.permissions;
  if (perms.startsWith('$')) return true;
  const standardMax = STANDARD_API_PERMISSIONS[parsed.resource];
  if (standardMax !== undefined) return [...perms].every((p) => standardMax.includes(p));
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
