/**
 * The standard API (`/apis/{site}/api/...`) as OpenEMR's code behaves (notes §3): the envelope on
 * modern controllers and raw bodies on legacy ones, numeric pid/eid routes beside uuid routes,
 * Particle validation messages keyed by field, 404 for empty legacy lists, pagination only on
 * `/api/patient`, and the 7.0 / 8.x status differences.
 */
import {
  columnText,
  empty,
  envelope,
  json,
  makeUuid,
  mysqlDate,
  mysqlDateTime,
  type EmulatorResponse,
  type EngineContext,
  type RouteInput,
} from './context.js';
import { blankListRow, blankPatientRow, blankUserRow } from './rows.js';
import { decodePhpBody, validateFields, type FieldRule, type ParticleErrors } from './validate.js';
import type {
  AppointmentRow,
  EncounterRow,
  ListRow,
  PatientRow,
  PrescriptionRow,
  SoapNoteRow,
  UserRow,
  VitalRow,
} from './types.js';

const SEX_LIST = ['Female', 'Male', 'UNK'];
const ENCOUNTER_CLASSES: Record<string, string> = {
  AMB: 'ambulatory',
  EMER: 'emergency',
  IMP: 'inpatient encounter',
  ACUTE: 'inpatient acute',
  OBSENC: 'observation encounter',
  VR: 'virtual',
  HH: 'home health',
};
const APPT_STATUSES = [
  '-',
  '*',
  '+',
  'x',
  '?',
  '@',
  '~',
  '!',
  '#',
  '<',
  '>',
  '$',
  '%',
  '^',
  '&',
  'AVM',
  'SMS',
  'EMAIL',
];
const CATEGORIES: Record<string, string> = {
  '5': 'Office Visit',
  '9': 'Established Patient',
  '10': 'New Patient',
  '12': 'Health and Behavioral Assessment',
  '13': 'Preventive Care Services',
  '14': 'Ophthalmological Services',
  '15': 'Group Therapy',
};

const PATIENT_TEXT_COLUMNS = [
  'title',
  'fname',
  'mname',
  'lname',
  'DOB',
  'sex',
  'ss',
  'street',
  'postal_code',
  'city',
  'state',
  'county',
  'country_code',
  'drivers_license',
  'contact_relationship',
  'phone_contact',
  'phone_home',
  'phone_biz',
  'phone_cell',
  'email',
  'email_direct',
  'race',
  'ethnicity',
  'status',
  'pubpid',
] as const;

function patientRules(forInsert: boolean): FieldRule[] {
  return [
    { field: 'fname', label: 'First Name', required: forInsert, rules: [{ kind: 'lengthBetween', min: 1, max: 255 }] },
    { field: 'lname', label: 'Last Name', required: forInsert, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
    { field: 'sex', label: 'Sex', required: forInsert, rules: [{ kind: 'lengthBetween', min: 4, max: 30 }] },
    { field: 'DOB', label: 'Date of Birth', required: forInsert, rules: [{ kind: 'datetime', format: 'Y-m-d' }] },
    { field: 'email', label: 'Email', required: false, allowEmpty: true, rules: [{ kind: 'email' }] },
  ];
}

const listRules = (dateFormat: 'Y-m-d' | 'Y-m-d H:i:s', requireBegdate: boolean): FieldRule[] => [
  { field: 'title', label: 'Title', required: true, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
  {
    field: 'begdate',
    label: 'Begin Date',
    required: requireBegdate,
    rules: [{ kind: 'datetime', format: dateFormat }],
  },
  {
    field: 'enddate',
    label: 'End Date',
    required: false,
    allowEmpty: true,
    rules: [{ kind: 'datetime', format: dateFormat }],
  },
  {
    field: 'diagnosis',
    label: 'Diagnosis',
    required: false,
    allowEmpty: true,
    rules: [{ kind: 'lengthBetween', min: 2, max: 255 }],
  },
];

const VITAL_NUMERIC = [
  'bps',
  'bpd',
  'weight',
  'height',
  'temperature',
  'pulse',
  'respiration',
  'BMI',
  'waist_circ',
  'head_circ',
  'oxygen_saturation',
] as const;
const VITAL_TEXT = ['temp_method', 'note', 'BMI_status'] as const;
const vitalRules: FieldRule[] = [
  ...VITAL_NUMERIC.map((field): FieldRule => ({
    field,
    required: false,
    allowEmpty: true,
    rules: [{ kind: 'numeric' }],
  })),
  ...VITAL_TEXT.map((field): FieldRule => ({
    field,
    required: false,
    allowEmpty: true,
    rules: [{ kind: 'lengthBetween', min: 1, max: 255 }],
  })),
];
const VITAL_UNITS: Record<string, string> = {
  bps: 'mm[Hg]',
  bpd: 'mm[Hg]',
  weight: 'lb',
  height: 'in',
  temperature: 'degF',
  pulse: '/min',
  respiration: '/min',
  BMI: 'kg/m2',
  waist_circ: 'in',
  head_circ: 'in',
  oxygen_saturation: '%',
};

const SOAP_FIELDS = ['subjective', 'objective', 'assessment', 'plan'] as const;
const soapRules: FieldRule[] = SOAP_FIELDS.map((field): FieldRule => ({
  field,
  required: false,
  rules: [{ kind: 'lengthBetween', min: 2, max: 65535 }],
}));

/** The standard API handlers. */
export class StandardApi {
  constructor(private readonly ctx: EngineContext) {}

  private get t() {
    return this.ctx.store.tables;
  }

  private now(): string {
    return mysqlDateTime(this.ctx.now());
  }

  /** Status of an array-returning controller: 8.x always answers 200 (notes §3.3). */
  private arrayStatus(status: number): number {
    return this.ctx.version === '8' ? 200 : status;
  }

  /** Status of a legacy raw controller's validation failure: 400 on 7.0, 200 on 8.x (notes §3.3). */
  private legacyInvalid(errors: ParticleErrors): EmulatorResponse {
    return json(this.ctx.version === '8' ? 200 : 400, errors);
  }

  /** The empty result of a legacy list: 404 with an empty body (8.x) or `null` (7.0). */
  private legacyEmpty(): EmulatorResponse {
    return this.ctx.version === '8' ? empty(404) : json(404, null);
  }

  /** A legacy raw list: the rows, or {@link StandardApi.legacyEmpty} when there are none. */
  private legacyRows(rows: unknown[]): EmulatorResponse {
    return rows.length === 0 ? this.legacyEmpty() : json(200, rows);
  }

  private patientByUuid(uuid: string): PatientRow | undefined {
    return this.t.patients.find((p) => p.uuid === uuid);
  }

  private patientByPid(pid: string): PatientRow | undefined {
    return this.t.patients.find((p) => p.pid === pid);
  }

  private unknownUuid(field: string, uuid: string): Record<string, unknown> {
    return { [field]: { 'invalid or nonexisting value': ` value ${uuid}` } };
  }

  /** The answer of a per-patient modern route whose `puuid` names no patient. */
  private unknownPatient(params: Record<string, string>): EmulatorResponse {
    return envelope(this.arrayStatus(400), [], { validationErrors: this.unknownUuid('puuid', params['puuid'] ?? '') });
  }

  // ------------------------------------------------------------------ patient

  /** `GET /api/patient` with search, `_sort`, `_limit`/`_maxresults`, `_offset`. */
  listPatients({ query, req }: RouteInput): EmulatorResponse {
    const contains = ['fname', 'lname', 'street', 'city', 'state', 'postal_code'];
    const exact = [
      'ss',
      'phone_home',
      'phone_biz',
      'phone_cell',
      'postal_contact',
      'sex',
      'country_code',
      'email',
      'DOB',
    ];
    // OpenEMR's tables use a case- and accent-insensitive collation (utf8mb4_general_ci): `LIKE '%muller%'` finds
    // "Müller". Folding both sides (NFD, combining marks dropped, lower case) compares as that collation does.
    const fold = (value: string): string => value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
    let rows = this.t.patients.filter((p) => {
      for (const f of contains) {
        const v = query.get(f);
        if (v !== null && !fold(p[f] ?? '').includes(fold(v))) return false;
      }
      for (const f of exact) {
        const v = query.get(f);
        if (v !== null && (p[f] ?? '') !== v) return false;
      }
      return true;
    });
    const sort = query.get('_sort');
    if (sort !== null && sort !== '') {
      const keys = sort.split(',').map((k) => (k.startsWith('-') ? { k: k.slice(1), dir: -1 } : { k, dir: 1 }));
      const allowed = new Set([
        'id',
        'pid',
        'pubpid',
        'title',
        'fname',
        'lname',
        'mname',
        'DOB',
        'sex',
        'date',
        'regdate',
        'uuid',
        'city',
        'state',
      ]);
      for (const key of keys) {
        if (!allowed.has(key.k)) {
          return envelope(400, [], { validationErrors: { _sort: `The sort field ${key.k} is not supported` } });
        }
      }
      rows = [...rows].sort((a, b) => {
        for (const { k, dir } of keys) {
          const x = a[k] ?? '';
          const y = b[k] ?? '';
          const numeric = k === 'id' || k === 'pid';
          const c = numeric ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
          if (c !== 0) return c * dir;
        }
        return 0;
      });
    } else {
      rows = [...rows].sort((a, b) => Number(a.id) - Number(b.id));
    }
    const limitText = query.get('_limit') ?? (this.ctx.version === '8' ? query.get('_maxresults') : null);
    const offset = Math.max(0, Number.parseInt(query.get('_offset') ?? '0', 10) || 0);
    let limit = Math.max(0, Number.parseInt(limitText ?? '0', 10) || 0);
    if (limit > 200) limit = 200;
    if (limit === 0)
      return envelope(
        200,
        rows.slice(offset).map((r) => this.patientView(r)),
      );
    // The server fetches limit+1 rows to know whether there is a next page. 7.0.x returns all of
    // them (openemr/openemr#8128); 8.x trims to the limit.
    const fetched = rows.slice(offset, offset + limit + 1);
    const hasNext = fetched.length > limit;
    const page = this.ctx.version === '7.0' ? fetched : fetched.slice(0, limit);
    // The generated links use `_count`, which the standard API never reads (notes §3.2).
    const self = `${req.origin}/apis/${this.ctx.site}/api/patient?`;
    const links: Record<string, string> = { first: `${self}_offset=0&_count=${limit}` };
    if (offset > 0) links['previous'] = `${self}_offset=${Math.max(0, offset - limit)}&_count=${limit}`;
    if (hasNext) links['next'] = `${self}_offset=${offset + limit}&_count=${limit}`;
    return envelope(
      200,
      page.map((r) => this.patientView(r)),
      { links },
    );
  }

  private patientView(row: PatientRow): Record<string, unknown> {
    return { ...row, suffix: '', previous_names: [] };
  }

  /** `GET /api/patient/{puuid}`: 400 with `validationErrors.uuid` for an unknown uuid (notes §3.3). */
  getPatient({ params }: RouteInput): EmulatorResponse {
    const row = this.patientByUuid(params['puuid'] ?? '');
    if (!row) return envelope(400, [], { validationErrors: this.unknownUuid('uuid', params['puuid'] ?? '') });
    return envelope(200, this.patientView(row));
  }

  /** `POST /api/patient`: 201 `{pid, uuid}`. */
  createPatient({ req, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, patientRules(true));
    if (Object.keys(errors).length > 0) return envelope(400, [], { validationErrors: errors });
    const id = this.ctx.store.nextId('patient_data.id');
    const pid = this.ctx.store.nextId('patient_data.pid');
    const row = blankPatientRow(String(id), String(pid), makeUuid(), this.now());
    this.applyPatient(row, body);
    if (row.pubpid === '') row.pubpid = String(pid);
    row.providerID = user?.id ?? null;
    this.t.patients.push(row);
    this.ctx.store.touch('patients');
    return envelope(201, { pid, uuid: row.uuid });
  }

  /** `PUT /api/patient/{puuid}`: partial update; 200 with the full record. */
  updatePatient({ req, params }: RouteInput): EmulatorResponse {
    const row = this.patientByUuid(params['puuid'] ?? '');
    const body = decodePhpBody(req.body);
    const errors: Record<string, unknown> = validateFields(body, patientRules(false));
    if (!row) Object.assign(errors, this.unknownUuid('uuid', params['puuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !row) return envelope(400, [], { validationErrors: errors });
    this.applyPatient(row, body);
    this.ctx.store.touch('patients');
    return envelope(200, this.patientView(row));
  }

  private applyPatient(row: PatientRow, body: Record<string, unknown>): void {
    for (const column of PATIENT_TEXT_COLUMNS) {
      if (column in body) row[column] = columnText(body[column]) ?? '';
    }
    row.date = this.now();
  }

  // ---------------------------------------------------------------- encounter

  private encounterView(e: EncounterRow): Record<string, unknown> {
    const patient = this.patientByPid(e.pid);
    const facility = this.t.facilities.find((f) => f.id === e.facility_id);
    const billing = this.t.facilities.find((f) => f.id === e.billing_facility);
    const provider = this.t.users.find((u) => u.id === e.provider_id);
    return {
      id: e.id,
      eid: e.encounter,
      euuid: e.uuid,
      encounter: e.encounter,
      date: e.date,
      reason: e.reason,
      onset_date: e.onset_date,
      sensitivity: e.sensitivity,
      billing_note: null,
      pc_catid: e.pc_catid,
      pc_catname: CATEGORIES[e.pc_catid] ?? null,
      last_level_billed: '0',
      last_level_closed: '0',
      last_stmt_date: null,
      stmt_count: '0',
      supervisor_id: '0',
      invoice_refno: '',
      referral_source: e.referral_source,
      billing_facility: e.billing_facility,
      external_id: e.external_id,
      last_update: e.last_update,
      pos_code: e.pos_code,
      class_code: e.class_code,
      class_title: ENCOUNTER_CLASSES[e.class_code] ?? null,
      pid: e.pid,
      puuid: patient?.uuid ?? null,
      facility_id: e.facility_id,
      facility_uuid: facility?.uuid ?? null,
      facility_name: facility?.name ?? e.facility,
      billing_facility_id: e.billing_facility,
      billing_facility_uuid: billing?.uuid ?? null,
      billing_facility_name: billing?.name ?? null,
      provider_id: e.provider_id,
      provider_uuid: provider?.uuid ?? null,
      provider_username: provider?.username ?? null,
      referring_provider_id: '0',
      ordering_provider_id: '0',
      discharge_disposition: null,
    };
  }

  /** `GET /api/patient/{puuid}/encounter`, newest (highest eid) first. */
  listEncounters({ params }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    if (!patient) return this.unknownPatient(params);
    const rows = this.t.encounters
      .filter((e) => e.pid === patient.pid)
      .sort((a, b) => Number(b.encounter) - Number(a.encounter));
    // 7.0: an empty list is a 404 with the envelope; 8.x answers 200 (notes §3.3).
    return envelope(
      rows.length === 0 ? this.arrayStatus(404) : 200,
      rows.map((e) => this.encounterView(e)),
    );
  }

  /** `GET /api/patient/{puuid}/encounter/{euuid}`. */
  getEncounter({ params }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    const row = patient && this.t.encounters.find((e) => e.uuid === params['euuid'] && e.pid === patient.pid);
    if (!patient) return this.unknownPatient(params);
    if (!row) return envelope(this.arrayStatus(404), []);
    return envelope(200, this.encounterView(row));
  }

  /** Adds Particle's callback error when a given `facility_id` names no facility (encounters, practitioners). */
  private checkFacility(body: Record<string, unknown>, errors: Record<string, unknown>): void {
    const facility = columnText(body['facility_id']);
    if (facility !== null && facility !== '' && !this.t.facilities.some((f) => f.id === facility)) {
      errors['facility_id'] = { 'Callback::INVALID_VALUE': 'facility_id must be an existing facility' };
    }
  }

  private encounterErrors(body: Record<string, unknown>, insert: boolean): ParticleErrors {
    const rules: FieldRule[] = [
      {
        field: 'pc_catid',
        label: 'pc_catid',
        required: insert,
        rules: [{ kind: 'inList', values: Object.keys(CATEGORIES) }],
      },
      {
        field: 'class_code',
        label: 'class_code',
        required: insert,
        rules: [{ kind: 'inList', values: Object.keys(ENCOUNTER_CLASSES) }],
      },
      {
        field: 'date',
        label: 'date',
        required: false,
        allowEmpty: true,
        rules: [{ kind: 'datetime', format: 'Y-m-d' }],
      },
      {
        field: 'onset_date',
        label: 'onset_date',
        required: false,
        allowEmpty: true,
        rules: [{ kind: 'datetime', format: 'Y-m-d' }],
      },
      {
        field: 'sensitivity',
        label: 'sensitivity',
        required: false,
        allowEmpty: true,
        rules: [{ kind: 'inList', values: ['normal', 'high'] }],
      },
    ];
    const errors = validateFields(body, rules);
    this.checkFacility(body, errors);
    return errors;
  }

  private applyEncounter(row: EncounterRow, body: Record<string, unknown>): void {
    const text = (k: string): string | null => columnText(body[k]);
    const dateOf = (v: string | null): string | null =>
      v === null || v === '' ? v : v.length === 10 ? `${v} 00:00:00` : v;
    if ('date' in body) row.date = dateOf(text('date')) ?? row.date;
    if ('onset_date' in body) row.onset_date = dateOf(text('onset_date'));
    for (const k of [
      'reason',
      'pc_catid',
      'class_code',
      'sensitivity',
      'referral_source',
      'pos_code',
      'external_id',
      'provider_id',
      'billing_facility',
    ] as const) {
      if (k in body) row[k] = text(k) ?? '';
    }
    if ('facility_id' in body) {
      row.facility_id = text('facility_id') ?? '';
      row.facility = this.t.facilities.find((f) => f.id === row.facility_id)?.name ?? row.facility;
    }
    row.last_update = this.now();
  }

  /** `POST /api/patient/{puuid}/encounter`. */
  createEncounter({ req, params, user }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    const body = decodePhpBody(req.body);
    const errors: Record<string, unknown> = this.encounterErrors(body, true);
    if (!patient) Object.assign(errors, this.unknownUuid('puuid', params['puuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !patient)
      return envelope(this.arrayStatus(400), [], { validationErrors: errors });
    const id = this.ctx.store.nextId('form_encounter.id');
    const encounter = this.ctx.store.nextId('sequences.encounter');
    const facility = this.t.facilities[0];
    const row: EncounterRow = {
      id: String(id),
      uuid: makeUuid(),
      encounter: String(encounter),
      pid: patient.pid,
      date: `${mysqlDate(this.ctx.now())} 00:00:00`,
      onset_date: null,
      reason: '',
      facility: facility?.name ?? '',
      facility_id: facility?.id ?? '',
      billing_facility: facility?.id ?? '',
      sensitivity: 'normal',
      referral_source: '',
      pos_code: '',
      external_id: '',
      pc_catid: '',
      class_code: '',
      provider_id: user?.id ?? '',
      user: user?.username ?? '',
      group: 'Default',
      last_update: this.now(),
    };
    this.applyEncounter(row, body);
    this.t.encounters.push(row);
    this.ctx.store.touch('encounters');
    return envelope(this.arrayStatus(201), this.encounterView(row));
  }

  /** `PUT /api/patient/{puuid}/encounter/{euuid}`: partial update. */
  updateEncounter({ req, params }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    const row = patient && this.t.encounters.find((e) => e.uuid === params['euuid'] && e.pid === patient.pid);
    const body = decodePhpBody(req.body);
    const errors: Record<string, unknown> = this.encounterErrors(body, false);
    if (!row) Object.assign(errors, this.unknownUuid('euuid', params['euuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !row)
      return envelope(this.arrayStatus(400), [], { validationErrors: errors });
    this.applyEncounter(row, body);
    this.ctx.store.touch('encounters');
    return envelope(200, this.encounterView(row));
  }

  // -------------------------------------------------------- vitals / soap

  private encounterByNumbers(pid: string, eid: string): EncounterRow | undefined {
    return this.t.encounters.find((e) => e.pid === pid && e.encounter === eid);
  }

  private vitalView(v: VitalRow): Record<string, unknown> {
    const view: Record<string, unknown> = { ...v };
    for (const [k, unit] of Object.entries(VITAL_UNITS)) view[`${k}_unit`] = unit;
    view['details'] = [];
    return view;
  }

  /** `GET /api/patient/{pid}/encounter/{eid}/vital`: 404 when empty. */
  listVitals({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.vitals.filter((v) => v.pid === params['pid'] && v.eid === params['eid'] && v.activity === '1');
    return this.legacyRows(rows.map((v) => this.vitalView(v)));
  }

  /** `GET /api/patient/{pid}/encounter/{eid}/vital/{vid}`. */
  getVital({ params }: RouteInput): EmulatorResponse {
    const row = this.t.vitals.find((v) => v.pid === params['pid'] && v.eid === params['eid'] && v.id === params['vid']);
    return row ? json(200, this.vitalView(row)) : this.legacyEmpty();
  }

  /** `POST /api/patient/{pid}/encounter/{eid}/vital`: 201 `{vid, fid}`. */
  createVital({ req, params, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, vitalRules);
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    if (!this.encounterByNumbers(params['pid'] ?? '', params['eid'] ?? '')) return this.legacyEmpty();
    const vid = this.ctx.store.nextId('form_vitals.id');
    const fid = this.ctx.store.nextId('forms.id');
    const row: VitalRow = {
      id: String(vid),
      uuid: makeUuid(),
      fid: String(fid),
      pid: params['pid'] ?? '',
      eid: params['eid'] ?? '',
      date: this.now(),
      user: user?.username ?? '',
      groupname: 'Default',
      authorized: '1',
      activity: '1',
      bps: null,
      bpd: null,
      weight: null,
      height: null,
      temperature: null,
      temp_method: null,
      pulse: null,
      respiration: null,
      note: null,
      BMI: null,
      BMI_status: null,
      waist_circ: null,
      head_circ: null,
      oxygen_saturation: null,
    };
    for (const k of [...VITAL_NUMERIC, ...VITAL_TEXT]) if (k in body) row[k] = columnText(body[k]);
    this.t.vitals.push(row);
    this.ctx.store.touch('vitals');
    return json(201, { vid, fid });
  }

  /** `PUT /api/patient/{pid}/encounter/{eid}/vital/{vid}`: 200 `{vid}`, 404 when not in that encounter. */
  updateVital({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, vitalRules);
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    const row = this.t.vitals.find((v) => v.pid === params['pid'] && v.eid === params['eid'] && v.id === params['vid']);
    if (!row) return this.legacyEmpty();
    for (const k of [...VITAL_NUMERIC, ...VITAL_TEXT]) if (k in body) row[k] = columnText(body[k]);
    row.date = this.now();
    this.ctx.store.touch('vitals');
    return json(200, { vid: row.id });
  }

  /** `GET …/soap_note`: 404 when empty. */
  listSoapNotes({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.soapNotes.filter(
      (s) => s.pid === params['pid'] && s.eid === params['eid'] && s.activity === '1',
    );
    return this.legacyRows(rows);
  }

  /** `GET …/soap_note/{sid}`. */
  getSoapNote({ params }: RouteInput): EmulatorResponse {
    const row = this.t.soapNotes.find(
      (s) => s.pid === params['pid'] && s.eid === params['eid'] && s.id === params['sid'],
    );
    return row ? json(200, row) : this.legacyEmpty();
  }

  /** `POST …/soap_note`: 201 `{sid, fid}`; omitted fields are stored as NULL. */
  createSoapNote({ req, params, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, soapRules);
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    if (!this.encounterByNumbers(params['pid'] ?? '', params['eid'] ?? '')) return this.legacyEmpty();
    const sid = this.ctx.store.nextId('form_soap.id');
    const fid = this.ctx.store.nextId('forms.id');
    const row: SoapNoteRow = {
      id: String(sid),
      fid: String(fid),
      pid: params['pid'] ?? '',
      eid: params['eid'] ?? '',
      date: this.now(),
      user: user?.username ?? '',
      groupname: 'Default',
      authorized: '1',
      activity: '1',
      subjective: null,
      objective: null,
      assessment: null,
      plan: null,
    };
    for (const k of SOAP_FIELDS) row[k] = columnText(body[k]);
    this.t.soapNotes.push(row);
    this.ctx.store.touch('soapNotes');
    return json(201, { sid, fid });
  }

  /** `PUT …/soap_note/{sid}`: overwrites all four fields (omitted ones become NULL). */
  updateSoapNote({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, soapRules);
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    const row = this.t.soapNotes.find(
      (s) => s.pid === params['pid'] && s.eid === params['eid'] && s.id === params['sid'],
    );
    if (!row) return this.legacyEmpty();
    for (const k of SOAP_FIELDS) row[k] = columnText(body[k]);
    row.date = this.now();
    this.ctx.store.touch('soapNotes');
    return json(200, { sid: row.id });
  }

  // ------------------------------------------------- lists (problems, allergies)

  private listView(row: ListRow): Record<string, unknown> {
    const patient = this.patientByPid(row.pid);
    return {
      ...row,
      patient_id: row.pid,
      puuid: patient?.uuid ?? null,
      condition_uuid: row.type === 'medical_problem' ? row.uuid : undefined,
      allergy_uuid: row.type === 'allergy' ? row.uuid : undefined,
      encounter_uuid: null,
      verification_title: row.verification === 'confirmed' ? 'Confirmed' : 'Unconfirmed',
    };
  }

  private newListRow(
    type: ListRow['type'],
    pid: string,
    body: Record<string, unknown>,
    user: UserRow | undefined,
  ): ListRow {
    const row = blankListRow({
      id: String(this.ctx.store.nextId('lists.id')),
      uuid: makeUuid(),
      pid,
      type,
      user: user?.username ?? '',
      date: this.now(),
    });
    this.applyList(row, body);
    return row;
  }

  private applyList(row: ListRow, body: Record<string, unknown>): void {
    for (const k of [
      'title',
      'diagnosis',
      'reaction',
      'severity_al',
      'verification',
      'outcome',
      'occurrence',
    ] as const) {
      if (k in body) row[k] = columnText(body[k]) ?? '';
    }
    for (const k of ['begdate', 'enddate', 'comments'] as const) {
      if (k in body) {
        const v = columnText(body[k]);
        row[k] = v === '' ? null : v;
      }
    }
    row.date = this.now();
  }

  /** `GET /api/{type}`: every patient's rows; query parameters are ignored (openemr/openemr#11608). */
  listAllIssues(type: 'medical_problem' | 'allergy'): (input: RouteInput) => EmulatorResponse {
    return () =>
      envelope(
        200,
        this.t.lists.filter((l) => l.type === type && l.activity === '1').map((l) => this.listView(l)),
      );
  }

  /** `GET /api/{type}/{uuid}`. */
  getIssueGlobal(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const row = this.t.lists.find((l) => l.type === type && l.uuid === params[param]);
      return row ? envelope(200, this.listView(row)) : envelope(this.arrayStatus(404), []);
    };
  }

  /** `GET /api/patient/{puuid}/{type}`. */
  listIssues(type: 'medical_problem' | 'allergy'): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      if (!patient) return this.unknownPatient(params);
      // Up to 7.0.3 these per-patient routes returned nothing (openemr/openemr#6242, #10827).
      if (this.ctx.version === '7.0') return envelope(200, []);
      const rows = this.t.lists.filter((l) => l.type === type && l.pid === patient.pid && l.activity === '1');
      return envelope(
        200,
        rows.map((l) => this.listView(l)),
      );
    };
  }

  /** `GET /api/patient/{puuid}/{type}/{uuid}`. */
  getIssue(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const row =
        patient && this.t.lists.find((l) => l.type === type && l.pid === patient.pid && l.uuid === params[param]);
      if (this.ctx.version === '7.0') return envelope(404, []); // empty in 7.0.x, as the list above
      return row ? envelope(200, this.listView(row)) : envelope(this.arrayStatus(404), []);
    };
  }

  /** `POST /api/patient/{puuid}/{type}`: problems need `title` and `begdate` (`Y-m-d`); allergies only `title`. */
  createIssue(type: 'medical_problem' | 'allergy'): (input: RouteInput) => EmulatorResponse {
    return ({ req, params, user }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const body = decodePhpBody(req.body);
      const errors: Record<string, unknown> = validateFields(body, listRules('Y-m-d', type === 'medical_problem'));
      if (!patient) Object.assign(errors, this.unknownUuid('puuid', params['puuid'] ?? ''));
      if (Object.keys(errors).length > 0 || !patient)
        return envelope(this.arrayStatus(400), [], { validationErrors: errors });
      const row = this.newListRow(type, patient.pid, body, user);
      this.t.lists.push(row);
      this.ctx.store.touch('lists');
      return envelope(this.arrayStatus(201), { id: Number(row.id), uuid: row.uuid });
    };
  }

  /** `PUT /api/patient/{puuid}/{type}/{uuid}`: partial update. */
  updateIssue(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ req, params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const row =
        patient && this.t.lists.find((l) => l.type === type && l.pid === patient.pid && l.uuid === params[param]);
      const body = decodePhpBody(req.body);
      const rules = listRules('Y-m-d', false).map((r) => ({ ...r, required: false }));
      const errors: Record<string, unknown> = validateFields(body, rules);
      if (!row) Object.assign(errors, this.unknownUuid(param, params[param] ?? ''));
      if (Object.keys(errors).length > 0 || !row)
        return envelope(this.arrayStatus(400), [], { validationErrors: errors });
      this.applyList(row, body);
      this.ctx.store.touch('lists');
      return envelope(200, this.listView(row));
    };
  }

  /** `DELETE /api/patient/{puuid}/{type}/{uuid}`. */
  deleteIssue(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const index = patient
        ? this.t.lists.findIndex((l) => l.type === type && l.pid === patient.pid && l.uuid === params[param])
        : -1;
      if (index < 0)
        return envelope(this.arrayStatus(400), [], { validationErrors: this.unknownUuid(param, params[param] ?? '') });
      this.t.lists.splice(index, 1);
      this.ctx.store.touch('lists');
      return envelope(200, []);
    };
  }

  // --------------------------------------------------------------- medication

  private medicationRules(insert: boolean): FieldRule[] {
    // Legacy list controllers validate dates as `Y-m-d H:i:s` (notes §3.4), unlike problems/allergies.
    return listRules('Y-m-d H:i:s', insert).map((r) => ({ ...r, required: insert && r.required }));
  }

  /** `GET /api/patient/{pid}/medication`: raw array, 404 when none. */
  listMedications({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.lists.filter((l) => l.type === 'medication' && l.pid === params['pid'] && l.activity === '1');
    return this.legacyRows(rows);
  }

  /** `GET /api/patient/{pid}/medication/{mid}`. */
  getMedication({ params }: RouteInput): EmulatorResponse {
    const row = this.t.lists.find((l) => l.type === 'medication' && l.pid === params['pid'] && l.id === params['mid']);
    return row ? json(200, row) : this.legacyEmpty();
  }

  /** `POST /api/patient/{pid}/medication`: 201 `{id}`. */
  createMedication({ req, params, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, this.medicationRules(true));
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    if (!this.patientByPid(params['pid'] ?? '')) return this.legacyEmpty();
    const row = this.newListRow('medication', params['pid'] ?? '', body, user);
    this.t.lists.push(row);
    this.ctx.store.touch('lists');
    return json(201, { id: Number(row.id) });
  }

  /** `PUT /api/patient/{pid}/medication/{mid}`: 200 `{id}`. */
  updateMedication({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, this.medicationRules(false));
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    const row = this.t.lists.find((l) => l.type === 'medication' && l.pid === params['pid'] && l.id === params['mid']);
    if (!row) return this.legacyEmpty();
    this.applyList(row, body);
    this.ctx.store.touch('lists');
    return json(200, { id: Number(row.id) });
  }

  /** `DELETE /api/patient/{pid}/medication/{mid}`: `true`. */
  deleteMedication({ params }: RouteInput): EmulatorResponse {
    const index = this.t.lists.findIndex(
      (l) => l.type === 'medication' && l.pid === params['pid'] && l.id === params['mid'],
    );
    if (index < 0) return this.legacyEmpty();
    this.t.lists.splice(index, 1);
    this.ctx.store.touch('lists');
    return json(200, true);
  }

  // ------------------------------------------------------------- prescription

  private prescriptionView(r: PrescriptionRow): Record<string, unknown> {
    const patient = this.patientByPid(r.pid);
    const encounter = this.t.encounters.find((e) => e.encounter === r.encounter);
    const provider = this.t.users.find((u) => u.id === r.provider_id);
    return {
      ...r,
      puuid: patient?.uuid ?? null,
      euuid: encounter?.uuid ?? null,
      pruuid: provider?.uuid ?? null,
      drug_uuid: null,
      source_table: 'prescriptions',
    };
  }

  /** `GET /api/prescription`, filtered by `patient.uuid` and exact column matches. */
  listPrescriptions({ query }: RouteInput): EmulatorResponse {
    let rows = this.t.prescriptions.filter((r) => r.active === '1');
    for (const [key, value] of query) {
      if (key === 'patient.uuid') {
        const patient = this.patientByUuid(value);
        rows = rows.filter((r) => r.pid === patient?.pid);
      } else if (key in (rows[0] ?? {})) {
        rows = rows.filter((r) => (r as unknown as Record<string, unknown>)[key] === value);
      }
    }
    return envelope(
      200,
      rows.map((r) => this.prescriptionView(r)),
    );
  }

  /** `GET /api/prescription/{uuid}`: 404 when not found. */
  getPrescription({ params }: RouteInput): EmulatorResponse {
    const row = this.t.prescriptions.find((r) => r.uuid === params['uuid'] && r.active === '1');
    return row ? envelope(200, this.prescriptionView(row)) : envelope(404, []);
  }

  /** `POST /api/prescription` (8.x): `drug` and numeric `patient_id` required; 201 `{id, uuid}`. */
  createPrescription({ req, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors: Record<string, unknown> = validateFields(body, [
      { field: 'drug', label: 'Drug', required: true, rules: [{ kind: 'lengthBetween', min: 1, max: 150 }] },
      { field: 'patient_id', label: 'Patient Id', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'quantity', required: false, allowEmpty: true, rules: [{ kind: 'lengthBetween', min: 1, max: 31 }] },
      { field: 'dosage', required: false, allowEmpty: true, rules: [{ kind: 'lengthBetween', min: 1, max: 100 }] },
      { field: 'start_date', required: false, allowEmpty: true, rules: [{ kind: 'datetime', format: 'Y-m-d' }] },
    ]);
    const pid = columnText(body['patient_id']) ?? '';
    if (!('patient_id' in errors) && !this.patientByPid(pid))
      errors['patient_id'] = { 'Callback::INVALID_VALUE': 'Patient Id must be an existing patient' };
    if (Object.keys(errors).length > 0) return envelope(400, [], { validationErrors: errors });
    const id = this.ctx.store.nextId('prescriptions.id');
    const text = (k: string): string => columnText(body[k]) ?? '';
    const row: PrescriptionRow = {
      id: String(id),
      uuid: makeUuid(),
      pid,
      encounter: columnText(body['encounter']),
      provider_id: columnText(body['provider_id']) ?? user?.id ?? null,
      drug: text('drug'),
      rxnorm_drugcode: text('rxnorm_drugcode'),
      dosage: text('dosage'),
      quantity: text('quantity'),
      route: text('route'),
      unit: text('unit'),
      interval: text('interval'),
      refills: text('refills') || '0',
      note: text('note'),
      start_date: text('start_date') || mysqlDate(this.ctx.now()),
      date_added: this.now(),
      active: '1',
    };
    this.t.prescriptions.push(row);
    this.ctx.store.touch('prescriptions');
    return envelope(201, { id, uuid: row.uuid });
  }

  /** `DELETE /api/prescription/{uuid}` (8.x): soft delete. */
  deletePrescription({ params }: RouteInput): EmulatorResponse {
    const row = this.t.prescriptions.find((r) => r.uuid === params['uuid'] && r.active === '1');
    if (!row) return envelope(404, []);
    row.active = '0';
    this.ctx.store.touch('prescriptions');
    return envelope(200, []);
  }

  // ---------------------------------------------------------------- procedure

  private procedureView(p: (typeof this.t.procedures)[number]): Record<string, unknown> {
    const patient = this.patientByPid(p.pid);
    return { ...p, puuid: patient?.uuid ?? null };
  }

  /** `GET /api/procedure`: every patient's orders, no filters honoured. */
  listProcedures(): EmulatorResponse {
    return envelope(
      200,
      this.t.procedures.map((p) => this.procedureView(p)),
    );
  }

  /** `GET /api/procedure/{uuid}`. */
  getProcedure({ params }: RouteInput): EmulatorResponse {
    const row = this.t.procedures.find((p) => p.uuid === params['uuid']);
    return row ? envelope(200, this.procedureView(row)) : envelope(this.arrayStatus(404), []);
  }

  // -------------------------------------------------------------- appointment

  private appointmentView(a: AppointmentRow): Record<string, unknown> {
    const patient = this.patientByPid(a.pid);
    const provider = this.t.users.find((u) => u.id === a.pc_aid);
    const facility = this.t.facilities.find((f) => f.id === a.pc_facility);
    const billing = this.t.facilities.find((f) => f.id === a.pc_billing_location);
    return {
      ...a,
      puuid: patient?.uuid ?? null,
      pce_aid_uuid: provider?.uuid ?? null,
      pce_aid_username: provider?.username ?? null,
      facility_uuid: facility?.uuid ?? null,
      facility_name: facility?.name ?? null,
      billing_location_uuid: billing?.uuid ?? null,
      fname: patient?.fname ?? null,
      lname: patient?.lname ?? null,
      DOB: patient?.DOB ?? null,
    };
  }

  /** `GET /api/appointment`: all appointments, raw. */
  listAllAppointments(): EmulatorResponse {
    return json(
      200,
      this.t.appointments.map((a) => this.appointmentView(a)),
    );
  }

  /** `GET /api/appointment/{eid}`: an array of one row. */
  getAppointmentGlobal({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.appointments.filter((a) => a.pc_eid === params['eid']);
    return this.legacyRows(rows.map((a) => this.appointmentView(a)));
  }

  /** `GET /api/patient/{pid}/appointment`: 404 when none. */
  listAppointments({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.appointments.filter((a) => a.pid === params['pid']);
    return this.legacyRows(rows.map((a) => this.appointmentView(a)));
  }

  /** `GET /api/patient/{pid}/appointment/{eid}`: an array of one row. */
  getAppointment({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.appointments.filter((a) => a.pid === params['pid'] && a.pc_eid === params['eid']);
    return this.legacyRows(rows.map((a) => this.appointmentView(a)));
  }

  /** `POST /api/patient/{pid}/appointment`: all nine fields required, `pc_startTime` exactly `HH:MM`; 200 `{id}`. */
  createAppointment({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = validateFields(body, [
      { field: 'pc_catid', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'pc_title', required: true, rules: [{ kind: 'lengthBetween', min: 2, max: 150 }] },
      { field: 'pc_duration', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'pc_hometext', required: true, allowEmpty: true, rules: [{ kind: 'lengthBetween', min: 0, max: null }] },
      { field: 'pc_apptstatus', required: true, rules: [{ kind: 'inList', values: APPT_STATUSES }] },
      { field: 'pc_eventDate', required: true, rules: [{ kind: 'datetime', format: 'Y-m-d' }] },
      { field: 'pc_startTime', required: true, rules: [{ kind: 'length', length: 5 }] },
      { field: 'pc_facility', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'pc_billing_location', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'pc_aid', required: false, allowEmpty: true, rules: [{ kind: 'numeric' }] },
    ]);
    const aid = columnText(body['pc_aid']);
    if (!('pc_aid' in errors) && aid !== null && aid !== '' && !this.t.users.some((u) => u.id === aid)) {
      errors['pc_aid'] = { 'Callback::INVALID_VALUE': 'pc_aid must be an existing provider' };
    }
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    if (!this.patientByPid(params['pid'] ?? '')) return this.legacyEmpty();
    const id = this.ctx.store.nextId('openemr_postcalendar_events.pc_eid');
    const start = columnText(body['pc_startTime']) ?? '00:00';
    const duration = Number(columnText(body['pc_duration']) ?? '0');
    const [h, m] = start.split(':').map(Number);
    const endMinutes = (h ?? 0) * 60 + (m ?? 0) + Math.round(duration / 60);
    const end = `${String(Math.floor(endMinutes / 60) % 24).padStart(2, '0')}:${String(endMinutes % 60).padStart(2, '0')}:00`;
    const text = (k: string): string => columnText(body[k]) ?? '';
    const row: AppointmentRow = {
      pc_eid: String(id),
      pc_uuid: makeUuid(),
      pid: params['pid'] ?? '',
      pc_aid: aid === '' ? null : aid,
      pc_catid: text('pc_catid'),
      pc_title: text('pc_title'),
      pc_duration: text('pc_duration'),
      pc_hometext: text('pc_hometext'),
      pc_apptstatus: text('pc_apptstatus'),
      pc_eventDate: text('pc_eventDate'),
      pc_startTime: `${start}:00`,
      pc_endTime: end,
      pc_facility: text('pc_facility'),
      pc_billing_location: text('pc_billing_location'),
    };
    this.t.appointments.push(row);
    this.ctx.store.touch('appointments');
    return json(200, { id });
  }

  /** `DELETE /api/patient/{pid}/appointment/{eid}`. */
  deleteAppointment({ params }: RouteInput): EmulatorResponse {
    const index = this.t.appointments.findIndex((a) => a.pid === params['pid'] && a.pc_eid === params['eid']);
    if (index < 0) return this.legacyEmpty();
    this.t.appointments.splice(index, 1);
    this.ctx.store.touch('appointments');
    return json(200, { message: 'record deleted' });
  }

  // ------------------------------------------------------------- practitioner

  /** The public view of a user row (never the password hash). */
  practitionerView(u: UserRow): Record<string, unknown> {
    const { password: _password, ...rest } = u;
    const facility = this.t.facilities.find((f) => f.id === u.facility_id);
    return { ...rest, facility: facility?.name ?? null, facility_uuid: facility?.uuid ?? null };
  }

  private practitioners(): UserRow[] {
    return this.t.users.filter((u) => u.npi !== '');
  }

  /** `GET /api/practitioner`, exact match on any column given. */
  listPractitioners({ query }: RouteInput): EmulatorResponse {
    const searchable = [
      'title',
      'fname',
      'lname',
      'mname',
      'npi',
      'email',
      'specialty',
      'facility_id',
      'username',
      'federaltaxid',
      'federaldrugid',
      'upin',
    ];
    const rows = this.practitioners().filter((u) =>
      [...query].every(([k, v]) => !searchable.includes(k) || (u as unknown as Record<string, unknown>)[k] === v),
    );
    return envelope(
      200,
      rows.map((u) => this.practitionerView(u)),
    );
  }

  /** `GET /api/practitioner/{pruuid}`. */
  getPractitioner({ params }: RouteInput): EmulatorResponse {
    const row = this.practitioners().find((u) => u.uuid === params['pruuid']);
    return row
      ? envelope(200, this.practitionerView(row))
      : envelope(400, [], { validationErrors: this.unknownUuid('uuid', params['pruuid'] ?? '') });
  }

  private practitionerErrors(body: Record<string, unknown>, insert: boolean): Record<string, unknown> {
    const errors: Record<string, unknown> = validateFields(body, [
      { field: 'fname', label: 'First Name', required: insert, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
      { field: 'lname', label: 'Last Name', required: insert, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
      {
        field: 'npi',
        label: 'NPI',
        required: insert,
        rules: [{ kind: 'numeric' }, { kind: 'lengthBetween', min: 10, max: 15 }],
      },
      { field: 'email', label: 'Email', required: false, allowEmpty: true, rules: [{ kind: 'email' }] },
    ]);
    this.checkFacility(body, errors);
    return errors;
  }

  private applyPractitioner(row: UserRow, body: Record<string, unknown>): void {
    for (const k of [
      'title',
      'fname',
      'mname',
      'lname',
      'npi',
      'email',
      'specialty',
      'federaltaxid',
      'federaldrugid',
      'upin',
    ] as const) {
      if (k in body) row[k] = columnText(body[k]) ?? '';
    }
    if ('facility_id' in body) row.facility_id = columnText(body['facility_id']);
  }

  /** `POST /api/practitioner`: 201 `{id, uuid}`. */
  createPractitioner({ req }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(req.body);
    const errors = this.practitionerErrors(body, true);
    if (Object.keys(errors).length > 0) return envelope(400, [], { validationErrors: errors });
    const id = this.ctx.store.nextId('users.id');
    const row = blankUserRow(String(id), makeUuid());
    this.applyPractitioner(row, body);
    this.t.users.push(row);
    this.ctx.store.touch('users');
    return envelope(201, { id, uuid: row.uuid });
  }

  /** `PUT /api/practitioner/{pruuid}`: 200 with the updated record. */
  updatePractitioner({ req, params }: RouteInput): EmulatorResponse {
    const row = this.practitioners().find((u) => u.uuid === params['pruuid']);
    const body = decodePhpBody(req.body);
    const errors = this.practitionerErrors(body, false);
    if (!row) Object.assign(errors, this.unknownUuid('uuid', params['pruuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !row) return envelope(400, [], { validationErrors: errors });
    this.applyPractitioner(row, body);
    this.ctx.store.touch('users');
    return envelope(200, this.practitionerView(row));
  }

  // --------------------------------------------------------------------- misc

  /** `GET /api/version` (no auth). */
  version(): EmulatorResponse {
    return json(
      200,
      this.ctx.version === '8'
        ? { version: '8.0.0', v_major: '8', v_minor: '0', v_patch: '0' }
        : { version: '7.0.2', v_major: '7', v_minor: '0', v_patch: '2' },
    );
  }

  /** `GET /api/product` (no auth). */
  product(): EmulatorResponse {
    return json(200, { name: 'OpenEMR', version: this.ctx.version === '8' ? '8.0.0' : '7.0.2' });
  }

  /** `GET /api/list/{list_name}`: raw `list_options` rows. */
  list({ params }: RouteInput): EmulatorResponse {
    const lists: Record<string, [string, string][]> = {
      sex: SEX_LIST.map((s) => [s, s === 'UNK' ? 'Unknown' : s]),
      apptstat: APPT_STATUSES.map((s) => [s, s]),
      _ActEncounterCode: Object.entries(ENCOUNTER_CLASSES),
    };
    const rows = lists[params['list_name'] ?? ''];
    if (!rows) return this.legacyEmpty();
    return json(
      200,
      rows.map(([option_id, title], i) => ({
        list_id: params['list_name'],
        option_id,
        title,
        seq: String((i + 1) * 10),
        is_default: '0',
        activity: '1',
      })),
    );
  }
}
