/**
 * Version profiles: what differs between OpenEMR releases, and the workaround the client applies for each
 * difference. `7.0` is 7.0.x as recorded on a running 7.0.1, `8.0` is 8.0.0 as recorded, and `8.2` is the
 * 8.2.0-dev OpenAPI document (not recorded). The recordings (`shared/reference/openemr/recorded-*`) are the
 * evidence; each entry names the files it comes from.
 * @packageDocumentation
 */
import { CdssError, type HttpTransport } from '@cdss/core';
import { z } from 'zod';

/** An OpenEMR release line the client knows. */
export type OpenEmrVersion = '7.0' | '8.0' | '8.2';

/** Every version profile, oldest first. */
export const OPENEMR_VERSIONS: readonly OpenEmrVersion[] = ['7.0', '8.0', '8.2'];

/** The client operations, as the compatibility table lists them. */
export const OPENEMR_OPERATIONS = [
  'oauth.registerClient',
  'oauth.discover',
  'oauth.passwordGrant',
  'oauth.refresh',
  'oauth.introspect',
  'oauth.authorizationUrl',
  'oauth.exchangeCode',
  'oauth.clientCredentials',
  'session.relogin',
  'patients.page',
  'patients.get',
  'patients.create',
  'patients.update',
  'encounters.list',
  'encounters.get',
  'encounters.create',
  'encounters.update',
  'vitals.list',
  'vitals.get',
  'vitals.create',
  'vitals.update',
  'soapNotes.list',
  'soapNotes.get',
  'soapNotes.create',
  'soapNotes.update',
  'medicalProblems.list',
  'medicalProblems.get',
  'medicalProblems.create',
  'medicalProblems.update',
  'medicalProblems.delete',
  'allergies.list',
  'allergies.get',
  'allergies.create',
  'allergies.update',
  'allergies.delete',
  'medications.list',
  'medications.get',
  'medications.create',
  'medications.update',
  'medications.delete',
  'prescriptions.list',
  'prescriptions.get',
  'prescriptions.create',
  'prescriptions.delete',
  'procedures.list',
  'procedures.get',
  'appointments.list',
  'appointments.get',
  'appointments.create',
  'appointments.delete',
  'practitioners.list',
  'practitioners.get',
  'practitioners.create',
  'practitioners.update',
  'documents.upload',
  'documents.list',
  'documents.read',
  'fhir.read',
  'fhir.search',
  'fhir.create',
  'fhir.update',
  'fhir.capabilities',
  'fhir.smartConfiguration',
] as const;

/** A client operation. */
export type OpenEmrOperation = (typeof OPENEMR_OPERATIONS)[number];

/** How a profile handles one operation that does not simply work. */
export interface OperationNote {
  /**
   * `workaround`: works, differently than the API intends; `defect`: sent as is, and fails in the cases the
   * text names with an `HttpError` (no workaround exists); `unsupported`: refused before sending.
   */
  kind: 'workaround' | 'defect' | 'unsupported';
  /** What the server does and what the client does about it (shown in the compatibility table). */
  text: string;
}

/** What the client needs to know about a release. */
export interface OpenEmrProfile {
  readonly version: OpenEmrVersion;
  /** Where a patient's problems and allergies are read: the per-patient route, or the global list filtered. */
  readonly issueReads: Readonly<Record<'medical_problem' | 'allergy', 'patient' | 'global'>>;
  /** Whether `/api/patient` pages with `_limit`/`_offset` (7.0.1 ignores them; 7.0.2+ answers `limit+1` rows). */
  readonly serverPaging: boolean;
  /** What an encounter create answers: the whole record (8.x) or only `{encounter, uuid}` (7.0). */
  readonly encounterCreateAnswer: 'record' | 'ids';
  /** Encounter updates: as the spec says, with `user` and `group` (8.0), or impossible (7.0.1). */
  readonly encounterUpdate: 'plain' | 'with-user-group' | 'unsupported';
  /** Whether vitals written through the standard API show as FHIR Observations (8.0.0 stores them without a uuid). */
  readonly vitalsInFhir: boolean;
  /** Whether allergy `reaction`, `severity_al` and `verification` are stored (7.0/8.0 drop them). */
  readonly allergyDetails: boolean;
  /** The date format medication `begdate`/`enddate` must have. */
  readonly medicationDates: 'Y-m-d' | 'Y-m-d H:i:s';
  /** Whether `POST`/`DELETE /api/prescription` exist. */
  readonly prescriptionWrites: boolean;
  /** Whether `GET /api/prescription/{uuid}` works (8.0.0 answers an SQL error page). */
  readonly prescriptionGet: boolean;
  /** Whether `GET /api/procedure` works (8.0.0 answers 500 with an SQL syntax error). */
  readonly procedureList: boolean;
  /** Whether appointment `pc_hometext` must be non-empty. */
  readonly appointmentCommentRequired: boolean;
  /** Whether practitioner updates answer the record (8.0.0 answers `data: []` although stored). */
  readonly practitionerUpdateAnswer: boolean;
  /** The operations that need a workaround or are refused, with why. */
  readonly notes: Readonly<Partial<Record<OpenEmrOperation, OperationNote>>>;
}

const W = (text: string): OperationNote => ({ kind: 'workaround', text });
const U = (text: string): OperationNote => ({ kind: 'unsupported', text });
const D = (text: string): OperationNote => ({ kind: 'defect', text });

/** Notes shared by every release (behaviour of all recorded versions, and of the spec). */
const COMMON: Partial<Record<OpenEmrOperation, OperationNote>> = {
  'medications.update': W('PUT needs the whole record (8.0.0 file 42): the client merges the stored row first'),
  'soapNotes.update': W('PUT overwrites all four parts: the client merges the stored note first'),
  'procedures.list': W('the route ignores filters: the client keeps the patient’s rows'),
  'oauth.passwordGrant': W('the answer’s `scope` omits `api:oemr`/`api:fhir` although granted (file 05)'),
  'fhir.create': W(
    'a Patient name without `use: "official"` is ignored (8.0.0 file 57): the client marks the first name official',
  ),
  'documents.read': W('the standard-API download answers 403 (8.0.0 file 65): read through FHIR `Binary`'),
};

/** The release profiles. */
export const OPENEMR_PROFILES: Readonly<Record<OpenEmrVersion, OpenEmrProfile>> = {
  '7.0': {
    version: '7.0',
    issueReads: { medical_problem: 'patient', allergy: 'global' },
    serverPaging: false,
    encounterCreateAnswer: 'ids',
    encounterUpdate: 'unsupported',
    vitalsInFhir: true,
    allergyDetails: false,
    medicationDates: 'Y-m-d',
    prescriptionWrites: false,
    prescriptionGet: true,
    procedureList: true,
    appointmentCommentRequired: false,
    practitionerUpdateAnswer: true,
    notes: {
      ...COMMON,
      'patients.page': W(
        '`_limit`/`_offset` are ignored (7.0.1 file 13): the client reads all matches once and pages them itself',
      ),
      'encounters.create': W('the answer is only `{encounter, uuid}` (file 18): the client reads the record'),
      'encounters.update': U('a PUT without `user`/`group` answers 400, with them 500 (files 20, 21)'),
      'medicalProblems.get': W('the single read answers `data: []`: the client reads the patient’s list'),
      'allergies.list': W('the per-patient list answers `data: []` (file 29): the client filters `/api/allergy`'),
      'allergies.get': W('the per-patient read answers nothing: the client filters `/api/allergy`'),
      'allergies.create': W('`reaction`, `severity_al`, `verification` are dropped (file 28): refused before sending'),
      'allergies.update': W('`reaction`, `severity_al`, `verification` are not stored: refused before sending'),
      'medications.create': W('`begdate` must be `Y-m-d` (file 32): the client sends the date only'),
      'prescriptions.create': U('no `POST /api/prescription` in 7.0'),
      'prescriptions.delete': U('no `DELETE /api/prescription` in 7.0'),
      'oauth.introspect': W('`exp` is a serialised PHP DateTime (file 08): read as epoch seconds'),
      'oauth.registerClient': W('only SMART v1 scopes (`.read`/`.write`) are known (files 01, 05)'),
    },
  },
  '8.0': {
    version: '8.0',
    issueReads: { medical_problem: 'global', allergy: 'global' },
    serverPaging: true,
    encounterCreateAnswer: 'record',
    encounterUpdate: 'with-user-group',
    vitalsInFhir: false,
    allergyDetails: false,
    medicationDates: 'Y-m-d H:i:s',
    prescriptionWrites: false,
    prescriptionGet: false,
    procedureList: false,
    appointmentCommentRequired: true,
    practitionerUpdateAnswer: false,
    notes: {
      ...COMMON,
      'encounters.update': W('needs `user` and `group` (file 21): the client sends the API user and its group'),
      'vitals.create': W(
        'answers 500 although stored (file 26): the client finds the new row by listing; such rows get no uuid and never show as FHIR Observations (file 78)',
      ),
      'vitals.update': W('answers 500 although stored (file 28): the client reads the row back to confirm'),
      'medicalProblems.list': W(
        'the per-patient list answers `data: []` (file 33): the client filters the global list',
      ),
      'medicalProblems.get': W('the per-patient read answers `data: []` (file 34): the client filters the global list'),
      'allergies.list': W('the per-patient list answers nothing: the client filters the global list'),
      'allergies.get': W('the per-patient read answers nothing: the client filters the global list'),
      'allergies.create': W('`reaction`, `severity_al`, `verification` are dropped (file 38): refused before sending'),
      'allergies.update': W('an update of only `severity_al` answers 500 (file 39): those fields are refused'),
      'medications.list': D('answers 500 once a row was added through the API (file 41)'),
      'medications.delete': W('answers 500 although deleted (file 44): the client reads back to confirm'),
      'prescriptions.create': U('no `POST /api/prescription` in 8.0.0 (file 45)'),
      'prescriptions.delete': U('no `DELETE /api/prescription` in 8.0.0'),
      'prescriptions.get': W('the read answers an SQL error page (file 47): the client filters the list'),
      'procedures.list': U('answers 500 with an SQL syntax error (file 48)'),
      'appointments.create': W('`pc_hometext` must not be empty (file 49): an empty comment is refused before sending'),
      'practitioners.get': W('a practitioner created without a username answers 404 (file 52): `undefined`'),
      'practitioners.update': W('answers `data: []` although stored (file 53): the client reads the record back'),
      'fhir.update': W(
        'a Patient PUT as read answers 500 (file 58): the client sends it without `meta`, `text` and `extension`',
      ),
      'documents.upload': W(
        'a stored upload answers 500 (file 61): the client confirms by listing the category before any retry',
      ),
      'documents.list': W('an empty category answers 404 with no body (file 64): `[]`'),
      'session.relogin': W('after a logout a refresh succeeds but its token is refused (file 60): full login'),
    },
  },
  '8.2': {
    version: '8.2',
    issueReads: { medical_problem: 'patient', allergy: 'patient' },
    serverPaging: true,
    encounterCreateAnswer: 'record',
    encounterUpdate: 'with-user-group',
    vitalsInFhir: true,
    allergyDetails: true,
    medicationDates: 'Y-m-d H:i:s',
    prescriptionWrites: true,
    prescriptionGet: true,
    procedureList: true,
    appointmentCommentRequired: true,
    practitionerUpdateAnswer: true,
    notes: {
      ...COMMON,
      'encounters.update': W('the client sends `user` and `group` as on 8.0 (harmless where not required)'),
      'appointments.create': W('`pc_hometext` must not be empty, as in 8.0: refused before sending'),
      'documents.upload': W('as in 8.0, a stored upload may answer 500: confirmed by listing before any retry'),
      'documents.list': W('an empty category answers 404 with no body: `[]`'),
    },
  },
};

/** Thrown when the connected OpenEMR release cannot do an operation; nothing was sent. */
export class OpenEmrUnsupportedError extends CdssError {
  /** The operation, e.g. `prescriptions.create`. */
  readonly operation: OpenEmrOperation;
  /** The profile in use. */
  readonly version: OpenEmrVersion;
  constructor(operation: OpenEmrOperation, version: OpenEmrVersion) {
    const note = OPENEMR_PROFILES[version].notes[operation];
    super(`OpenEMR ${version} cannot do ${operation}${note ? `: ${note.text}` : ''}`, { code: 'UNSUPPORTED' });
    this.operation = operation;
    this.version = version;
  }
}

/**
 * The profile of a version name. `'8'` (the name before profiles were split) means `8.0`.
 * @param version - `7.0`, `8.0`, `8.2` or `8`
 */
export function profileFor(version: OpenEmrVersion | '8'): OpenEmrProfile {
  return OPENEMR_PROFILES[version === '8' ? '8.0' : version];
}

const versionAnswer = z.looseObject({
  version: z.string().optional(),
  v_major: z.union([z.string(), z.number()]).optional(),
  v_minor: z.union([z.string(), z.number()]).optional(),
});

const capabilityAnswer = z.looseObject({
  resourceType: z.literal('CapabilityStatement'),
  software: z.looseObject({ version: z.string().optional() }).optional(),
  rest: z.array(z.looseObject({ resource: z.array(z.looseObject({ type: z.string() })).optional() })).optional(),
});

/** The profile of a `major.minor` version text, if the client knows that line. */
function fromVersionText(text: string): OpenEmrVersion | undefined {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major === 7) return '7.0';
  if (major === 8 && minor < 2) return '8.0';
  if (major > 8 || (major === 8 && minor >= 2)) return '8.2';
  return undefined;
}

/**
 * Finds the release of a running OpenEMR: `GET /api/version` (`v_major`/`v_minor`, unauthenticated in 8.x
 * per its code), else the FHIR CapabilityStatement (`software.version`, or 8.x-only resource types such as
 * `Media` and `Specimen`, recorded on 8.0.0 file 04 and absent from the 7.0 spec). A release this client
 * does not know maps to the nearest profile.
 * @param transport - a transport on `<baseUrl>/apis/<site>`
 * @param signal - cancels the probe
 * @returns the profile's version
 * @throws {@link CdssError} `VERSION_UNKNOWN` when neither answer says
 */
export async function detectOpenEmrVersion(transport: HttpTransport, signal?: AbortSignal): Promise<OpenEmrVersion> {
  const probe = async (path: string): Promise<unknown> => {
    try {
      const res = await transport.request({
        method: 'GET',
        path,
        signal,
        retry: false,
        headers: { accept: 'application/json' },
        acceptStatus: () => true,
      });
      return res.status === 200 ? res.data : undefined;
    } catch (error) {
      if (signal?.aborted) throw error;
      return undefined;
    }
  };
  const version = versionAnswer.safeParse(await probe('api/version'));
  if (version.success) {
    const text =
      version.data.v_major !== undefined
        ? `${String(version.data.v_major)}.${String(version.data.v_minor ?? 0)}`
        : (version.data.version ?? '');
    const found = fromVersionText(text);
    if (found) return found;
  }
  const caps = capabilityAnswer.safeParse(await probe('fhir/metadata'));
  if (caps.success) {
    const declared = caps.data.software?.version;
    const found = declared === undefined ? undefined : fromVersionText(declared);
    if (found) return found;
    const types = new Set((caps.data.rest ?? []).flatMap((r) => (r.resource ?? []).map((x) => x.type)));
    return types.has('Media') || types.has('Specimen') || types.has('MedicationDispense') ? '8.0' : '7.0';
  }
  throw new CdssError('Could not tell which OpenEMR release answers: set the client option `version`', {
    code: 'VERSION_UNKNOWN',
  });
}
