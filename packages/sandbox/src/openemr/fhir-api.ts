/**
 * The FHIR R4 API (`/apis/{site}/fhir/...`) as OpenEMR's code behaves (notes §4): resources built from
 * the same tables as the standard API, search results as `collection` Bundles with only a `self` link
 * and `total` = entries in this response, `_offset` only for Patient, unknown search parameters giving
 * an empty 200 Bundle, unknown ids a 404 with body `[]`, and writes only on Patient, Practitioner and
 * Organization, where `POST /fhir/Patient` answers 201 `{pid, uuid}`.
 */
import {
  columnText,
  json,
  makeUuid,
  mysqlDateTime,
  type EmulatorResponse,
  type EngineContext,
  type RouteInput,
} from './context.js';
import { blankPatientRow } from './rows.js';
import { isUuid, validateFields } from './validate.js';
import type { EncounterRow, FacilityRow, ListRow, PatientRow, PrescriptionRow, UserRow, VitalRow } from './types.js';
import type { StandardApi } from './standard-api.js';

type Resource = Record<string, unknown> & { resourceType: string; id: string };

function iso(mysql: string | null | undefined): string | undefined {
  if (mysql === null || mysql === undefined || mysql === '') return undefined;
  return mysql.length === 10 ? mysql : `${mysql.replace(' ', 'T')}+00:00`;
}

function operationOutcome(status: number, diagnostics: string, code = 'invalid'): EmulatorResponse {
  return json(status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] });
}

const GENDER_TO_FHIR = (sex: string): string => {
  const s = sex.toLowerCase();
  if (s === 'male' || s === 'female') return s;
  if (s === 'unk') return 'unknown';
  return 'other'; // notes §4.4: anything else, including an empty sex, becomes `other`
};

const VITAL_CODES: { field: keyof VitalRow; code: string; display: string; unit: string }[] = [
  { field: 'bps', code: '8480-6', display: 'Systolic blood pressure', unit: 'mm[Hg]' },
  { field: 'bpd', code: '8462-4', display: 'Diastolic blood pressure', unit: 'mm[Hg]' },
  { field: 'weight', code: '29463-7', display: 'Body weight', unit: '[lb_av]' },
  { field: 'height', code: '8302-2', display: 'Body height', unit: '[in_i]' },
  { field: 'temperature', code: '8310-5', display: 'Body temperature', unit: '[degF]' },
  { field: 'pulse', code: '8867-4', display: 'Heart rate', unit: '/min' },
  { field: 'respiration', code: '9279-1', display: 'Respiratory rate', unit: '/min' },
  {
    field: 'oxygen_saturation',
    code: '59408-5',
    display: 'Oxygen saturation in Arterial blood by Pulse oximetry',
    unit: '%',
  },
  { field: 'BMI', code: '39156-5', display: 'Body mass index (BMI) [Ratio]', unit: 'kg/m2' },
];

/** Search parameters each resource understands; anything else empties the result (notes §4.3). */
const SEARCH_PARAMS: Record<string, string[]> = {
  Patient: [
    '_id',
    '_lastUpdated',
    'identifier',
    'name',
    'family',
    'given',
    'birthdate',
    'gender',
    'address',
    'address-city',
    'address-postalcode',
    'address-state',
    'email',
    'phone',
    'telecom',
    'generalPractitioner',
  ],
  Encounter: ['_id', '_lastUpdated', 'patient', 'date'],
  Condition: ['_id', '_lastUpdated', 'patient', 'category'],
  AllergyIntolerance: ['_id', '_lastUpdated', 'patient'],
  MedicationRequest: ['_id', '_lastUpdated', 'patient', 'intent', 'status'],
  Observation: ['_id', '_lastUpdated', 'patient', 'code', 'category', 'date'],
  Practitioner: [
    '_id',
    '_lastUpdated',
    'name',
    'family',
    'given',
    'identifier',
    'active',
    'email',
    'phone',
    'telecom',
    'address',
  ],
  Organization: [
    '_id',
    '_lastUpdated',
    'name',
    'email',
    'phone',
    'telecom',
    'address',
    'address-city',
    'address-postalcode',
    'address-state',
  ],
};
const CONTROL_PARAMS = ['_count', '_offset', '_sort', '_revinclude', '_format'];

/** The FHIR handlers. */
export class FhirApi {
  constructor(
    private readonly ctx: EngineContext,
    private readonly standard: StandardApi,
  ) {}

  private get t() {
    return this.ctx.store.tables;
  }

  private fhirBase(input: RouteInput): string {
    return `${input.req.origin}/apis/${this.ctx.site}/fhir`;
  }

  // ------------------------------------------------------------------ mapping

  private patient(p: PatientRow): Resource {
    const telecom: Record<string, string>[] = [];
    if (p.phone_home) telecom.push({ system: 'phone', value: p.phone_home, use: 'home' });
    if (p.phone_cell) telecom.push({ system: 'phone', value: p.phone_cell, use: 'mobile' });
    if (p.email) telecom.push({ system: 'email', value: p.email, use: 'home' });
    const provider = this.t.users.find((u) => u.id === p.providerID);
    const r: Resource = {
      resourceType: 'Patient',
      id: p.uuid,
      meta: { versionId: '1', lastUpdated: iso(p.date) },
      identifier: [
        {
          use: 'official',
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PT' }] },
          system: 'http://terminology.hl7.org/CodeSystem/v2-0203',
          value: p.pubpid,
        },
      ],
      active: true,
      name: [
        {
          use: 'official',
          family: p.lname,
          given: [p.fname, ...(p.mname ? [p.mname] : [])],
          ...(p.title ? { prefix: [p.title] } : {}),
        },
      ],
      gender: GENDER_TO_FHIR(p.sex || 'Unknown'),
    };
    if (p.DOB) r['birthDate'] = p.DOB;
    if (telecom.length > 0) r['telecom'] = telecom;
    if (p.street || p.city) {
      r['address'] = [
        {
          line: p.street ? [p.street] : undefined,
          city: p.city || undefined,
          state: p.state || undefined,
          postalCode: p.postal_code || undefined,
          country: p.country_code || undefined,
        },
      ];
    }
    if (provider) r['generalPractitioner'] = [{ reference: `Practitioner/${provider.uuid}`, type: 'Practitioner' }];
    return r;
  }

  private patientRef(pid: string): Record<string, string> | undefined {
    const patient = this.t.patients.find((p) => p.pid === pid);
    return patient ? { reference: `Patient/${patient.uuid}`, type: 'Patient' } : undefined;
  }

  private encounter(e: EncounterRow): Resource {
    const provider = this.t.users.find((u) => u.id === e.provider_id);
    const facility = this.t.facilities.find((f) => f.id === e.facility_id);
    return {
      resourceType: 'Encounter',
      id: e.uuid,
      meta: { versionId: '1', lastUpdated: iso(e.last_update) },
      identifier: [{ system: 'urn:ietf:rfc:3986', value: e.uuid }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: e.class_code },
      type: [
        {
          coding: [
            { system: 'http://snomed.info/sct', code: '185349003', display: 'Encounter for check up (procedure)' },
          ],
        },
      ],
      subject: this.patientRef(e.pid),
      participant: provider
        ? [{ individual: { reference: `Practitioner/${provider.uuid}`, type: 'Practitioner' } }]
        : undefined,
      period: { start: iso(e.date) },
      reasonCode: e.reason ? [{ text: e.reason }] : undefined,
      serviceProvider: facility ? { reference: `Organization/${facility.uuid}`, type: 'Organization' } : undefined,
    };
  }

  private coding(diagnosis: string): Record<string, unknown>[] {
    return diagnosis
      .split(';')
      .filter(Boolean)
      .map((d) => {
        const [system, code] = d.split(':');
        const url =
          system === 'ICD10'
            ? 'http://hl7.org/fhir/sid/icd-10-cm'
            : system === 'SNOMED-CT'
              ? 'http://snomed.info/sct'
              : system === 'RXCUI'
                ? 'http://www.nlm.nih.gov/research/umls/rxnorm'
                : `urn:openemr:${system ?? ''}`;
        return { system: url, code: code ?? '', display: '' };
      });
  }

  private condition(l: ListRow): Resource {
    const resolved = l.enddate !== null && l.enddate !== '';
    return {
      resourceType: 'Condition',
      id: l.uuid,
      meta: { versionId: '1', lastUpdated: iso(l.date) },
      clinicalStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
            code: resolved ? 'resolved' : 'active',
          },
        ],
      },
      verificationStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
            code: l.verification === 'confirmed' ? 'confirmed' : 'unconfirmed',
          },
        ],
      },
      category: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/condition-category',
              code: 'problem-list-item',
              display: 'Problem List Item',
            },
          ],
        },
      ],
      code: { coding: this.coding(l.diagnosis), text: l.title },
      subject: this.patientRef(l.pid),
      onsetDateTime: iso(l.begdate),
      abatementDateTime: resolved ? iso(l.enddate) : undefined,
    };
  }

  private allergy(l: ListRow): Resource {
    return {
      resourceType: 'AllergyIntolerance',
      id: l.uuid,
      meta: { versionId: '1', lastUpdated: iso(l.date) },
      clinicalStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
            code: l.enddate ? 'inactive' : 'active',
          },
        ],
      },
      verificationStatus: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' },
        ],
      },
      category: ['medication'],
      criticality: l.severity_al === 'severe' ? 'high' : 'low',
      code: { coding: this.coding(l.diagnosis), text: l.title },
      patient: this.patientRef(l.pid),
      onsetDateTime: iso(l.begdate),
      reaction: l.reaction ? [{ manifestation: [{ text: l.reaction }] }] : undefined,
    };
  }

  private medicationRequestFromList(l: ListRow): Resource {
    return {
      resourceType: 'MedicationRequest',
      id: l.uuid,
      meta: { versionId: '1', lastUpdated: iso(l.date) },
      status: l.enddate ? 'completed' : 'active',
      intent: 'plan',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community' }] },
      ],
      reportedBoolean: true,
      medicationCodeableConcept: { coding: this.coding(l.diagnosis), text: l.title },
      subject: this.patientRef(l.pid),
      authoredOn: iso(l.begdate),
    };
  }

  private medicationRequestFromRx(r: PrescriptionRow): Resource {
    const provider = this.t.users.find((u) => u.id === r.provider_id);
    return {
      resourceType: 'MedicationRequest',
      id: r.uuid,
      meta: { versionId: '1', lastUpdated: iso(r.date_added) },
      status: r.active === '1' ? 'active' : 'stopped',
      intent: 'order',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community' }] },
      ],
      reportedBoolean: false,
      medicationCodeableConcept: {
        coding: r.rxnorm_drugcode
          ? [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: r.rxnorm_drugcode, display: r.drug }]
          : [],
        text: r.drug,
      },
      subject: this.patientRef(r.pid),
      authoredOn: iso(r.start_date),
      requester: provider ? { reference: `Practitioner/${provider.uuid}`, type: 'Practitioner' } : undefined,
      dosageInstruction: r.dosage ? [{ text: `${r.dosage} ${r.unit}`.trim() }] : undefined,
    };
  }

  private observations(v: VitalRow): Resource[] {
    const out: Resource[] = [];
    const subject = this.patientRef(v.pid);
    const e = this.t.encounters.find((x) => x.pid === v.pid && x.encounter === v.eid);
    const encounter = e ? { reference: `Encounter/${e.uuid}`, type: 'Encounter' } : undefined;
    for (const c of VITAL_CODES) {
      const value = v[c.field];
      if (value === null || value === undefined || value === '') continue;
      out.push({
        resourceType: 'Observation',
        id: makeUuid(`${v.uuid}:${c.code}`),
        meta: { versionId: '1', lastUpdated: iso(v.date) },
        status: 'final',
        category: [
          {
            coding: [
              {
                system: 'http://terminology.hl7.org/CodeSystem/observation-category',
                code: 'vital-signs',
                display: 'Vital Signs',
              },
            ],
          },
        ],
        code: { coding: [{ system: 'http://loinc.org', code: c.code, display: c.display }] },
        subject,
        encounter,
        effectiveDateTime: iso(v.date),
        valueQuantity: { value: Number(value), unit: c.unit, system: 'http://unitsofmeasure.org', code: c.unit },
      });
    }
    return out;
  }

  private practitioner(u: UserRow): Resource {
    return {
      resourceType: 'Practitioner',
      id: u.uuid,
      meta: { versionId: '1', lastUpdated: undefined },
      identifier: u.npi ? [{ system: 'http://hl7.org/fhir/sid/us-npi', value: u.npi }] : undefined,
      active: u.active === '1',
      name: [
        {
          use: 'official',
          family: u.lname,
          given: [u.fname, ...(u.mname ? [u.mname] : [])],
          ...(u.title ? { prefix: [u.title] } : {}),
        },
      ],
      telecom: u.email ? [{ system: 'email', value: u.email, use: 'work' }] : undefined,
    };
  }

  private organization(f: FacilityRow): Resource {
    return {
      resourceType: 'Organization',
      id: f.uuid,
      meta: { versionId: '1' },
      identifier: f.facility_npi ? [{ system: 'http://hl7.org/fhir/sid/us-npi', value: f.facility_npi }] : undefined,
      active: true,
      type: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/organization-type',
              code: 'prov',
              display: 'Healthcare Provider',
            },
          ],
        },
      ],
      name: f.name,
      telecom: f.phone ? [{ system: 'phone', value: f.phone, use: 'work' }] : undefined,
      address: [
        {
          line: f.street ? [f.street] : undefined,
          city: f.city || undefined,
          state: f.state || undefined,
          postalCode: f.postal_code || undefined,
        },
      ],
    };
  }

  private all(type: string): Resource[] {
    switch (type) {
      case 'Patient':
        return this.t.patients.map((p) => this.patient(p));
      case 'Encounter':
        return this.t.encounters.map((e) => this.encounter(e));
      case 'Condition':
        return this.t.lists.filter((l) => l.type === 'medical_problem').map((l) => this.condition(l));
      case 'AllergyIntolerance':
        return this.t.lists.filter((l) => l.type === 'allergy').map((l) => this.allergy(l));
      case 'MedicationRequest':
        return [
          ...this.t.prescriptions.map((r) => this.medicationRequestFromRx(r)),
          ...this.t.lists.filter((l) => l.type === 'medication').map((l) => this.medicationRequestFromList(l)),
        ];
      case 'Observation':
        return this.t.vitals.filter((v) => v.activity === '1').flatMap((v) => this.observations(v));
      case 'Practitioner':
        return this.t.users.filter((u) => u.npi !== '').map((u) => this.practitioner(u));
      case 'Organization':
        return this.t.facilities.map((f) => this.organization(f));
      default:
        return [];
    }
  }

  // ------------------------------------------------------------------- search

  private matches(r: Resource, key: string, value: string): boolean {
    const get = (path: string): unknown => r[path];
    const text = (v: unknown): string => JSON.stringify(v ?? '').toLowerCase();
    const val = value.toLowerCase();
    switch (key) {
      case '_id':
        return value.split(',').includes(r.id);
      case '_lastUpdated':
        return true;
      case 'patient': {
        const ref = (get('subject') ?? get('patient')) as { reference?: string } | undefined;
        const id = value.replace(/^Patient\//, '');
        return ref?.reference === `Patient/${id}`;
      }
      case 'name':
        return text(get('name')).includes(val);
      case 'family':
        return ((get('name') as { family?: string }[] | undefined) ?? []).some((n) =>
          (n.family ?? '').toLowerCase().startsWith(val),
        );
      case 'given':
        return ((get('name') as { given?: string[] }[] | undefined) ?? []).some((n) =>
          (n.given ?? []).some((g) => g.toLowerCase().startsWith(val)),
        );
      case 'birthdate':
        return get('birthDate') === value.replace(/^eq/, '');
      case 'gender':
        return get('gender') === val;
      case 'identifier':
        return text(get('identifier')).includes(val);
      case 'email':
      case 'phone':
      case 'telecom':
        return text(get('telecom')).includes(val);
      case 'address':
      case 'address-city':
      case 'address-postalcode':
      case 'address-state':
        return text(get('address')).includes(val);
      case 'category':
        return text(get('category')).includes(`"code":"${val.split('|').pop() ?? ''}"`);
      case 'code':
        return value
          .split(',')
          .some((c) => text(get('code')).includes(`"code":"${(c.split('|').pop() ?? '').toLowerCase()}"`));
      case 'status':
        return get('status') === value;
      case 'intent':
        return get('intent') === value;
      case 'active':
        return String(get('active')) === value;
      case 'date': {
        const m = /^(eq|ge|gt|le|lt)?(.+)$/.exec(value);
        const when = String(get('effectiveDateTime') ?? (get('period') as { start?: string } | undefined)?.start ?? '');
        if (!m || when === '') return false;
        const [, op = 'eq', bound = ''] = m;
        const a = when.slice(0, bound.length);
        return op === 'eq'
          ? a === bound
          : op === 'ge'
            ? a >= bound
            : op === 'gt'
              ? a > bound
              : op === 'le'
                ? a <= bound
                : a < bound;
      }
      default:
        return false;
    }
  }

  private bundle(input: RouteInput, type: string, entries: Resource[]): EmulatorResponse {
    const base = this.fhirBase(input);
    const self = `${base}/${type}${input.query.toString() ? `?${input.query.toString()}` : ''}`;
    return json(200, {
      resourceType: 'Bundle',
      id: makeUuid(),
      meta: { lastUpdated: mysqlDateTime(this.ctx.now()).replace(' ', 'T') },
      type: 'collection',
      total: entries.length,
      link: [{ relation: 'self', url: self }],
      entry: entries.map((resource) => ({ fullUrl: `${base}/${type}/${resource.id}`, resource })),
    });
  }

  /**
   * `GET /fhir/{type}` (also `POST /fhir/{type}/_search` with a form body).
   * @param type - the resource type
   */
  search(type: string): (input: RouteInput) => EmulatorResponse {
    return (input) => {
      const params = input.req.method === 'POST' ? new URLSearchParams(input.req.body ?? '') : input.query;
      const known = SEARCH_PARAMS[type] ?? [];
      let rows = this.all(type);
      for (const [key, value] of params) {
        if (CONTROL_PARAMS.includes(key)) continue;
        // Unknown or unsupported parameters: the validation message is dropped, 200 with an empty Bundle.
        if (!known.includes(key)) return this.bundle(input, type, []);
        rows = rows.filter((r) => this.matches(r, key, value));
      }
      if (type === 'Patient') {
        const offset = Number.parseInt(params.get('_offset') ?? '0', 10);
        if (Number.isFinite(offset) && offset > 0) rows = rows.slice(offset);
      }
      const count = Number.parseInt(params.get('_count') ?? '', 10);
      if (Number.isFinite(count) && count > 0) rows = rows.slice(0, count);
      return this.bundle(input, type, rows);
    };
  }

  /**
   * `GET /fhir/{type}/{uuid}`: 404 with body `[]` for an unknown id; 400 for a malformed one.
   * @param type - the resource type
   */
  read(type: string): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const id = params['uuid'] ?? '';
      if (!isUuid(id))
        return json(400, {
          validationErrors: {
            _id: 'The search field argument was invalid, improperly formatted, or could not be parsed.  Inner message: UUID columns must be a valid UUID string',
          },
        });
      const found = this.all(type).find((r) => r.id === id);
      return found ? json(200, found) : json(404, []);
    };
  }

  // -------------------------------------------------------------------- write

  private parseResource(
    input: RouteInput,
    type: string,
  ): { body: Record<string, unknown> } | { error: EmulatorResponse } {
    let body: unknown;
    try {
      body = JSON.parse(input.req.body ?? '');
    } catch {
      return { error: operationOutcome(400, 'Invalid JSON body') };
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      return { error: operationOutcome(400, 'Body must be a JSON object') };
    const record = body as Record<string, unknown>;
    if (record['resourceType'] !== type) return { error: operationOutcome(400, `resourceType must be ${type}`) };
    return { body: record };
  }

  private static readonly PATIENT_ELEMENTS = [
    'resourceType',
    'id',
    'meta',
    'text',
    'extension',
    'identifier',
    'active',
    'name',
    'telecom',
    'gender',
    'birthDate',
    'deceasedBoolean',
    'deceasedDateTime',
    'address',
    'maritalStatus',
    'communication',
    'generalPractitioner',
  ];

  private patientColumns(
    body: Record<string, unknown>,
  ): { columns: Record<string, string> } | { error: EmulatorResponse } {
    for (const key of Object.keys(body)) {
      if (!FhirApi.PATIENT_ELEMENTS.includes(key)) return { error: operationOutcome(400, `Unknown element ${key}`) };
    }
    const name = (Array.isArray(body['name']) ? body['name'][0] : undefined) as
      { family?: unknown; given?: unknown[]; prefix?: unknown[] } | undefined;
    const address = (Array.isArray(body['address']) ? body['address'][0] : undefined) as
      Record<string, unknown> | undefined;
    const telecom = (Array.isArray(body['telecom']) ? body['telecom'] : []) as {
      system?: string;
      value?: string;
      use?: string;
    }[];
    const gender = typeof body['gender'] === 'string' ? body['gender'] : undefined;
    const columns: Record<string, string> = {};
    if (name?.family !== undefined) columns['lname'] = String(name.family);
    if (name?.given?.[0] !== undefined) columns['fname'] = String(name.given[0]);
    if (name?.given?.[1] !== undefined) columns['mname'] = String(name.given[1]);
    if (name?.prefix?.[0] !== undefined) columns['title'] = String(name.prefix[0]);
    if (gender !== undefined) columns['sex'] = gender === 'male' ? 'Male' : gender === 'female' ? 'Female' : 'Unknown';
    if (typeof body['birthDate'] === 'string') columns['DOB'] = body['birthDate'];
    if (address) {
      const line = Array.isArray(address['line']) ? address['line'][0] : undefined;
      if (line !== undefined) columns['street'] = String(line);
      for (const [k, c] of [
        ['city', 'city'],
        ['state', 'state'],
        ['postalCode', 'postal_code'],
        ['country', 'country_code'],
      ] as const) {
        if (address[k] !== undefined) columns[c] = String(address[k]);
      }
    }
    for (const t of telecom) {
      if (t.system === 'email' && t.value) columns['email'] = t.value;
      if (t.system === 'phone' && t.value) columns[t.use === 'mobile' ? 'phone_cell' : 'phone_home'] = t.value;
    }
    return { columns };
  }

  /** `POST /fhir/Patient`: 201 `{pid, uuid}`, not a Patient resource, and no Location header (notes §4.1). */
  createPatient(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Patient');
    if ('error' in parsed) return parsed.error;
    const mapped = this.patientColumns(parsed.body);
    if ('error' in mapped) return mapped.error;
    const errors = validateFields(mapped.columns, [
      { field: 'fname', label: 'First Name', required: true, rules: [{ kind: 'lengthBetween', min: 1, max: 255 }] },
      { field: 'lname', label: 'Last Name', required: true, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
      { field: 'sex', label: 'Sex', required: true, rules: [{ kind: 'lengthBetween', min: 4, max: 30 }] },
      { field: 'DOB', label: 'Date of Birth', required: true, rules: [{ kind: 'datetime', format: 'Y-m-d' }] },
    ]);
    if (Object.keys(errors).length > 0) return operationOutcome(400, JSON.stringify(errors), 'required');
    const id = this.ctx.store.nextId('patient_data.id');
    const pid = this.ctx.store.nextId('patient_data.pid');
    const row = blankPatientRow(String(id), String(pid), makeUuid(), mysqlDateTime(this.ctx.now()));
    Object.assign(row, mapped.columns);
    row.pubpid = String(pid);
    this.t.patients.push(row);
    this.ctx.store.touch('patients');
    return json(201, { pid, uuid: row.uuid });
  }

  /** `PUT /fhir/Patient/{uuid}`: 200 with the updated Patient. */
  updatePatient(input: RouteInput): EmulatorResponse {
    const row = this.t.patients.find((p) => p.uuid === input.params['uuid']);
    if (!row) return json(404, []);
    const parsed = this.parseResource(input, 'Patient');
    if ('error' in parsed) return parsed.error;
    const mapped = this.patientColumns(parsed.body);
    if ('error' in mapped) return mapped.error;
    const errors = validateFields(mapped.columns, [
      { field: 'lname', label: 'Last Name', required: false, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
      { field: 'sex', label: 'Sex', required: false, rules: [{ kind: 'lengthBetween', min: 4, max: 30 }] },
      { field: 'DOB', label: 'Date of Birth', required: false, rules: [{ kind: 'datetime', format: 'Y-m-d' }] },
    ]);
    if (Object.keys(errors).length > 0) return operationOutcome(400, JSON.stringify(errors), 'invalid');
    Object.assign(row, mapped.columns);
    row.date = mysqlDateTime(this.ctx.now());
    this.ctx.store.touch('patients');
    return json(200, this.patient(row));
  }

  private practitionerColumns(body: Record<string, unknown>): Record<string, string> {
    const name = (Array.isArray(body['name']) ? body['name'][0] : undefined) as
      { family?: unknown; given?: unknown[]; prefix?: unknown[] } | undefined;
    const identifier = (Array.isArray(body['identifier']) ? body['identifier'] : []) as {
      system?: string;
      value?: string;
    }[];
    const telecom = (Array.isArray(body['telecom']) ? body['telecom'] : []) as { system?: string; value?: string }[];
    const columns: Record<string, string> = {};
    if (name?.family !== undefined) columns['lname'] = String(name.family);
    if (name?.given?.[0] !== undefined) columns['fname'] = String(name.given[0]);
    if (name?.prefix?.[0] !== undefined) columns['title'] = String(name.prefix[0]);
    const npi = identifier.find((i) => i.system === 'http://hl7.org/fhir/sid/us-npi');
    if (npi?.value !== undefined) columns['npi'] = npi.value;
    const email = telecom.find((t) => t.system === 'email');
    if (email?.value !== undefined) columns['email'] = email.value;
    return columns;
  }

  /** `POST /fhir/Practitioner`: 201 `{id, uuid}`. */
  createPractitioner(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Practitioner');
    if ('error' in parsed) return parsed.error;
    const res = this.standard.createPractitioner({
      ...input,
      req: { ...input.req, body: JSON.stringify(this.practitionerColumns(parsed.body)) },
    });
    const body = JSON.parse(res.body ?? '{}') as { validationErrors?: unknown; data?: unknown };
    if (res.status !== 201) return operationOutcome(400, JSON.stringify(body.validationErrors ?? {}), 'invalid');
    return json(201, body.data);
  }

  /** `PUT /fhir/Practitioner/{uuid}`: 200 with the Practitioner. */
  updatePractitioner(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Practitioner');
    if ('error' in parsed) return parsed.error;
    const res = this.standard.updatePractitioner({
      ...input,
      params: { pruuid: input.params['uuid'] ?? '' },
      req: { ...input.req, body: JSON.stringify(this.practitionerColumns(parsed.body)) },
    });
    if (res.status !== 200) return json(404, []);
    const row = this.t.users.find((u) => u.uuid === input.params['uuid']);
    return row ? json(200, this.practitioner(row)) : json(404, []);
  }

  /** `POST /fhir/Organization`: 201 `{id, uuid}`. */
  createOrganization(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Organization');
    if ('error' in parsed) return parsed.error;
    const name = columnText(parsed.body['name']) ?? '';
    if (name.length < 2)
      return operationOutcome(
        400,
        JSON.stringify({ name: { 'LengthBetween::TOO_SHORT': 'name must be 2 characters or longer' } }),
        'required',
      );
    const id = this.ctx.store.nextId('facility.id');
    const address = (Array.isArray(parsed.body['address']) ? parsed.body['address'][0] : {}) as Record<string, unknown>;
    const row: FacilityRow = {
      id: String(id),
      uuid: makeUuid(),
      name,
      phone: '',
      street: Array.isArray(address['line']) ? String(address['line'][0] ?? '') : '',
      city: columnText(address['city']) ?? '',
      state: columnText(address['state']) ?? '',
      postal_code: columnText(address['postalCode']) ?? '',
      country_code: columnText(address['country']) ?? '',
      facility_npi: '',
    };
    this.t.facilities.push(row);
    this.ctx.store.touch('facilities');
    return json(201, { id, uuid: row.uuid });
  }

  /** `PUT /fhir/Organization/{uuid}`. */
  updateOrganization(input: RouteInput): EmulatorResponse {
    const row = this.t.facilities.find((f) => f.uuid === input.params['uuid']);
    if (!row) return json(404, []);
    const parsed = this.parseResource(input, 'Organization');
    if ('error' in parsed) return parsed.error;
    const name = columnText(parsed.body['name']);
    if (name !== null) {
      if (name.length < 2) return operationOutcome(400, 'name must be 2 characters or longer');
      row.name = name;
    }
    this.ctx.store.touch('facilities');
    return json(200, this.organization(row));
  }

  // ------------------------------------------------------------- conformance

  /** `GET /fhir/metadata` (no auth). */
  metadata(input: RouteInput): EmulatorResponse {
    const resources = [
      'AllergyIntolerance',
      'Condition',
      'Encounter',
      'MedicationRequest',
      'Observation',
      'Organization',
      'Patient',
      'Practitioner',
    ];
    return json(200, {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: mysqlDateTime(this.ctx.now()).slice(0, 10),
      kind: 'instance',
      software: { name: 'OpenEMR', version: this.ctx.version === '8' ? '8.0.0' : '7.0.2' },
      implementation: { description: 'OpenEMR FHIR API (emulator)', url: this.fhirBase(input) },
      fhirVersion: '4.0.1',
      format: ['application/json'],
      rest: [
        {
          mode: 'server',
          resource: resources.map((type) => ({
            type,
            interaction: [
              { code: 'read' },
              { code: 'search-type' },
              ...(['Patient', 'Practitioner', 'Organization'].includes(type)
                ? [{ code: 'create' }, { code: 'update' }]
                : []),
            ],
            searchParam: (SEARCH_PARAMS[type] ?? []).map((name) => ({ name, type: 'string' })),
          })),
        },
      ],
    });
  }

  /** `GET /fhir/.well-known/smart-configuration` (no auth; notes §2.1). */
  smartConfiguration(input: RouteInput): EmulatorResponse {
    const oauth = `${input.req.origin}/oauth2/${this.ctx.site}`;
    return json(200, {
      issuer: this.fhirBase(input),
      authorization_endpoint: `${oauth}/authorize`,
      token_endpoint: `${oauth}/token`,
      registration_endpoint: `${oauth}/registration`,
      introspection_endpoint: `${oauth}/introspect`,
      jwks_uri: `${oauth}/jwk`,
      grant_types_supported: ['client_credentials', 'authorization_code'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384'],
      scopes_supported: ['openid', 'fhirUser', 'offline_access', 'launch/patient', 'api:fhir'],
      response_types_supported: ['code'],
      capabilities: [
        'launch-ehr',
        'launch-standalone',
        'client-public',
        'client-confidential-symmetric',
        'client-confidential-asymmetric',
        'sso-openid-connect',
        'context-standalone-patient',
        'permission-offline',
        'permission-patient',
        'permission-user',
        'permission-v1',
        'permission-v2',
      ],
      code_challenge_methods_supported: ['S256'],
    });
  }
}
