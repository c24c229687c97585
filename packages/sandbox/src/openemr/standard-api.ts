/**
 * The standard API (`/apis/{site}/api/...`) as a real OpenEMR answers it, per release (the exchanges in
 * `shared/reference/openemr/recorded-*` first, notes §3 where they are silent): the envelope on modern
 * controllers (`links: []` on 8.x, none on 7.0) and raw bodies on legacy ones, numeric pid/eid routes
 * beside uuid routes, Particle validation messages keyed by field, 404 with no body for empty legacy
 * lists, and each release's defects: 8.0.0's per-patient problem and allergy reads that answer nothing,
 * vitals writes and medication deletes that answer 500 after storing, the medication list that fails
 * once the API added a row, the prescription read that answers an SQL error page, the procedure list
 * that answers 500; 7.0.1's ignored paging and impossible encounter updates.
 */
import {
  bodyText,
  columnText,
  envelope,
  isKernel8,
  json,
  kernelError,
  makeUuid,
  mysqlDate,
  mysqlDateTime,
  type EmulatorResponse,
  type EngineContext,
  type RouteInput,
} from './context.js';
import { blankListRow, blankPatientRow, blankUserRow } from './rows.js';
import { decodePhpBody, validateFields, type FieldRule, type ParticleErrors } from './validate.js';
import { CATEGORIES, ENCOUNTER_CLASSES, VITAL_DECIMALS, Views } from './views.js';
import type { EncounterRow, ListRow, PatientRow, PrescriptionRow, UserRow, VitalRow, AppointmentRow } from './types.js';

const SEX_LIST = ['Female', 'Male', 'UNK'];
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

/** The patient validator names fields by their column (recorded-7.0.1 file 17: "fname must be provided …"). */
function patientRules(forInsert: boolean): FieldRule[] {
  return [
    { field: 'fname', required: forInsert, rules: [{ kind: 'lengthBetween', min: 1, max: 255 }] },
    { field: 'lname', required: forInsert, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
    { field: 'sex', required: forInsert, rules: [{ kind: 'lengthBetween', min: 4, max: 30 }] },
    { field: 'DOB', required: forInsert, rules: [{ kind: 'datetime', format: ['Y-m-d'] }] },
    { field: 'email', required: false, allowEmpty: true, rules: [{ kind: 'email' }] },
  ];
}

const listRules = (dateFormats: readonly ('Y-m-d' | 'Y-m-d H:i:s')[], requireBegdate: boolean): FieldRule[] => [
  { field: 'title', required: true, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
  {
    field: 'begdate',
    label: 'begdate',
    required: requireBegdate,
    rules: [{ kind: 'datetime', format: dateFormats }],
  },
  {
    field: 'enddate',
    label: 'enddate',
    required: false,
    allowEmpty: true,
    rules: [{ kind: 'datetime', format: dateFormats }],
  },
  {
    field: 'diagnosis',
    required: false,
    allowEmpty: true,
    rules: [{ kind: 'lengthBetween', min: 2, max: 255 }],
  },
];

const VITAL_NUMERIC = ['bps', 'bpd', ...VITAL_DECIMALS] as const;
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

const SOAP_FIELDS = ['subjective', 'objective', 'assessment', 'plan'] as const;
const soapRules: FieldRule[] = SOAP_FIELDS.map((field): FieldRule => ({
  field,
  required: false,
  rules: [{ kind: 'lengthBetween', min: 2, max: 65535 }],
}));

/** Allergy columns 7.0.1 and 8.0.0 do not take from the API (not whitelisted: dropped, recorded). */
const ALLERGY_UNLISTED = ['reaction', 'severity_al', 'verification'] as const;

/** The standard API handlers. */
export class StandardApi {
  readonly views: Views;

  constructor(private readonly ctx: EngineContext) {
    this.views = new Views(() => this.ctx.store.tables, ctx.version);
  }

  private get t() {
    return this.ctx.store.tables;
  }

  private get k8(): boolean {
    return isKernel8(this.ctx.version);
  }

  private get v80(): boolean {
    return this.ctx.version === '8.0';
  }

  private now(): string {
    return mysqlDateTime(this.ctx.now());
  }

  private env(
    status: number,
    data: unknown,
    options: { validationErrors?: Record<string, unknown>; links?: Record<string, string> } = {},
  ): EmulatorResponse {
    return envelope(this.ctx.version, status, data, options);
  }

  /**
   * The `links` 8.x puts on unpaged lists: the site address with the query (PHP turns `.` into `_`), `site`,
   * `_offset` and `_count=0` (recorded files 20, 46).
   */
  private listLinks(
    origin: string,
    query: URLSearchParams = new URLSearchParams(),
  ): Record<string, string> | undefined {
    if (!this.k8) return undefined;
    const params = [...query]
      .map(([k, v]) => `${encodeURIComponent(k.replace(/\./g, '_'))}=${encodeURIComponent(v)}&`)
      .join('');
    return { first: `${origin}?${params}site=${this.ctx.site}&_offset=0&_count=0` };
  }

  /** Status of an array-returning controller: 8.x always answers 200 (notes §3.3; recorded file 24). */
  private arrayStatus(status: number): number {
    return this.k8 ? 200 : status;
  }

  /** A legacy controller's validation failure: the bare Particle object, 400 on 7.0, 200 on 8.x. */
  private legacyInvalid(errors: ParticleErrors): EmulatorResponse {
    return json(this.k8 ? 200 : 400, errors);
  }

  /** The empty result of a legacy route: 404 with an empty body (recorded on 8.0.0 and 7.0.1, file 25 / 31). */
  private legacyEmpty(): EmulatorResponse {
    return { status: 404, headers: { 'content-type': this.k8 ? 'text/html; charset=utf-8' : 'application/json' } };
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
    return this.env(this.arrayStatus(400), [], { validationErrors: this.unknownUuid('puuid', params['puuid'] ?? '') });
  }

  // ------------------------------------------------------------------ patient

  /** `GET /api/patient` with search, `_sort`, `_limit`/`_maxresults`, `_offset` (ignored by 7.0.1). */
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
          return this.env(400, [], { validationErrors: { _sort: `The sort field ${key.k} is not supported` } });
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
      rows = [...rows].sort((a, b) => Number(a.pid) - Number(b.pid));
    }
    // 7.0.1 ignores _limit and _offset and answers every match, without links (recorded file 13).
    if (!this.k8)
      return this.env(
        200,
        rows.map((r) => this.views.patient(r)),
      );
    const limitText = query.get('_limit') ?? query.get('_maxresults');
    const offset = Math.max(0, Number.parseInt(query.get('_offset') ?? '0', 10) || 0);
    let limit = Math.max(0, Number.parseInt(limitText ?? '0', 10) || 0);
    if (limit > 200) limit = 200;
    // The generated links have the site address (no path), the search fields, and `_count`, which the
    // standard API never reads (recorded files 14, 15).
    const search = new URLSearchParams(
      [...query].filter(([k]) => !['_limit', '_maxresults', '_offset', '_sort'].includes(k)),
    );
    const link = (at: number): string => `${req.origin}?${search.toString()}&_offset=${at}&_count=${limit}`;
    const fetched = limit === 0 ? rows.slice(offset) : rows.slice(offset, offset + limit + 1);
    const page = limit === 0 ? fetched : fetched.slice(0, limit);
    const links: Record<string, string> = { first: link(0) };
    if (limit > 0 && offset > 0) links['previous'] = link(Math.max(0, offset - limit));
    if (limit > 0 && fetched.length > limit) links['next'] = link(offset + limit);
    return this.env(
      200,
      page.map((r) => this.views.patient(r)),
      { links },
    );
  }

  /** `GET /api/patient/{puuid}`: 400 with `validationErrors.uuid` for an unknown uuid (file 17). */
  getPatient({ params }: RouteInput): EmulatorResponse {
    const row = this.patientByUuid(params['puuid'] ?? '');
    if (!row) return this.env(400, [], { validationErrors: this.unknownUuid('uuid', params['puuid'] ?? '') });
    return this.env(200, this.views.patient(row));
  }

  /** `POST /api/patient`: 201 `{pid, uuid}` (file 11). */
  createPatient({ req, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = validateFields(body, patientRules(true));
    if (Object.keys(errors).length > 0) return this.env(400, [], { validationErrors: errors });
    const id = this.ctx.store.nextId('patient_data.id');
    const pid = this.ctx.store.nextId('patient_data.pid');
    const row = blankPatientRow(String(id), String(pid), makeUuid(), this.now());
    this.applyPatient(row, body);
    if (row.pubpid === '') row.pubpid = String(pid);
    // 8.0.0 records no author (created_by 0, updated_by null); 7.0.1 the API user (recorded files 12 / 10).
    row['created_by'] = this.k8 ? '0' : (user?.id ?? '0');
    row['updated_by'] = this.k8 ? null : (user?.id ?? null);
    this.t.patients.push(row);
    this.ctx.store.touch('patients');
    return this.env(201, { pid, uuid: row.uuid });
  }

  /** `PUT /api/patient/{puuid}`: partial update; 200 with the full record (file 13). */
  updatePatient({ req, params }: RouteInput): EmulatorResponse {
    const key = params['puuid'] ?? '';
    const row = this.patientByUuid(key);
    const body = decodePhpBody(bodyText(req));
    const errors: Record<string, unknown> = validateFields(body, patientRules(false));
    // An unknown uuid is keyed by the uuid itself on updates (file 18).
    if (!row) errors['uuid'] = { [key]: `UUID ${key} does not exist` };
    if (Object.keys(errors).length > 0 || !row) return this.env(400, [], { validationErrors: errors });
    this.applyPatient(row, body);
    this.ctx.store.touch('patients');
    return this.env(200, this.views.patient(row));
  }

  private applyPatient(row: PatientRow, body: Record<string, unknown>): void {
    for (const column of PATIENT_TEXT_COLUMNS) {
      if (column in body) row[column] = columnText(body[column]) ?? '';
    }
    row.date = this.now();
    row['last_updated'] = row.date;
  }

  // ---------------------------------------------------------------- encounter

  /** `GET /api/patient/{puuid}/encounter`, newest (highest eid) first (file 20; empty: file 23). */
  listEncounters({ params, req }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    if (!patient) return this.unknownPatient(params);
    const rows = this.t.encounters
      .filter((e) => e.pid === patient.pid)
      .sort((a, b) => Number(b.encounter) - Number(a.encounter));
    if (rows.length === 0) return this.env(this.arrayStatus(404), []);
    return this.env(
      200,
      rows.map((e) => this.views.encounter(e)),
      { links: this.listLinks(req.origin) },
    );
  }

  /** `GET /api/patient/{puuid}/encounter/{euuid}`. */
  getEncounter({ params }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    const row = patient && this.t.encounters.find((e) => e.uuid === params['euuid'] && e.pid === patient.pid);
    if (!patient) return this.unknownPatient(params);
    if (!row) return this.env(this.arrayStatus(404), []);
    return this.env(200, this.views.encounter(row));
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
        field: 'date',
        label: 'date',
        required: false,
        allowEmpty: true,
        rules: [{ kind: 'datetime', format: ['Y-m-d'] }],
      },
      {
        field: 'onset_date',
        label: 'onset_date',
        required: false,
        allowEmpty: true,
        rules: [{ kind: 'datetime', format: ['Y-m-d'] }],
      },
      {
        field: 'sensitivity',
        label: 'sensitivity',
        required: false,
        allowEmpty: true,
        rules: [{ kind: 'inList', values: ['normal', 'high'] }],
      },
    ];
    if (!insert) {
      // The update validator requires who makes the change (recorded on 8.0.0 file 21 and 7.0.1 file 20).
      rules.push({
        field: 'user',
        label: 'user',
        required: true,
        rules: [{ kind: 'lengthBetween', min: 1, max: 255 }],
      });
      rules.push({
        field: 'group',
        label: 'group',
        required: true,
        rules: [{ kind: 'lengthBetween', min: 1, max: 255 }],
      });
    }
    const errors = validateFields(body, rules);
    const classCode = columnText(body['class_code']);
    if ((insert || classCode !== null) && (classCode === null || !(classCode in ENCOUNTER_CLASSES))) {
      errors['class_code'] =
        classCode === null && insert
          ? { 'Required::NON_EXISTENT_KEY': 'class_code must be provided, but does not exist' }
          : { 'Callback::INVALID_VALUE': 'class code is invalid' };
    }
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
      'user',
      'group',
    ] as const) {
      if (k in body) row[k] = text(k) ?? '';
    }
    if ('facility_id' in body) {
      row.facility_id = text('facility_id');
      row.facility = this.t.facilities.find((f) => f.id === row.facility_id)?.name ?? row.facility;
    }
    row.last_update = this.now();
  }

  /** `POST /api/patient/{puuid}/encounter`: 8.x answers 200 with the record (file 19), 7.0 201 `{encounter, uuid}`. */
  createEncounter({ req, params, user }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    const body = decodePhpBody(bodyText(req));
    const errors: Record<string, unknown> = this.encounterErrors(body, true);
    if (!patient) Object.assign(errors, this.unknownUuid('puuid', params['puuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !patient)
      return this.env(this.arrayStatus(400), [], { validationErrors: errors });
    const id = this.ctx.store.nextId('form_encounter.id');
    const encounter = this.ctx.store.nextId('sequences.encounter');
    // A create that names no facility or provider stores NULL and 0 (recorded file 19).
    const row: EncounterRow = {
      id: String(id),
      uuid: makeUuid(),
      encounter: String(encounter),
      pid: patient.pid,
      date: `${mysqlDate(this.ctx.now())} 00:00:00`,
      onset_date: null,
      reason: '',
      facility: '',
      facility_id: null,
      billing_facility: '0',
      sensitivity: '',
      referral_source: '',
      pos_code: '',
      external_id: '',
      pc_catid: '',
      class_code: '',
      provider_id: '0',
      user: user?.username ?? '',
      group: 'Default',
      last_update: this.now(),
    };
    this.applyEncounter(row, body);
    this.t.encounters.push(row);
    this.ctx.store.touch('encounters');
    if (!this.k8) return this.env(201, { encounter: Number(row.encounter), uuid: row.uuid });
    // The create answer has the encounter number once more (file 19; lists and updates do not, files 20, 22).
    return this.env(200, { ...this.views.encounter(row), encounter: Number(row.encounter) });
  }

  /**
   * `PUT /api/patient/{puuid}/encounter/{euuid}`: `user` and `group` required (8.x: 200 with the errors, file 21);
   * 7.0.1 answers 400 without them and 500 with an empty body with them (a fatal typo in its validator).
   */
  updateEncounter({ req, params }: RouteInput): EmulatorResponse {
    const patient = this.patientByUuid(params['puuid'] ?? '');
    const row = patient && this.t.encounters.find((e) => e.uuid === params['euuid'] && e.pid === patient.pid);
    const body = decodePhpBody(bodyText(req));
    const errors: Record<string, unknown> = this.encounterErrors(body, false);
    if (!this.k8 && !('user' in errors))
      return { status: 500, headers: { 'content-type': 'text/html; charset=utf-8' } };
    if (!row) Object.assign(errors, this.unknownUuid('euuid', params['euuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !row)
      return this.env(this.arrayStatus(400), [], { validationErrors: errors });
    this.applyEncounter(row, body);
    this.ctx.store.touch('encounters');
    return this.env(200, this.views.encounter(row));
  }

  // -------------------------------------------------------- vitals / soap

  private encounterByNumbers(pid: string, eid: string): EncounterRow | undefined {
    return this.t.encounters.find((e) => e.pid === pid && e.encounter === eid);
  }

  /** `GET /api/patient/{pid}/encounter/{eid}/vital`: 404 with no body when empty (file 25). */
  listVitals({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.vitals.filter((v) => v.pid === params['pid'] && v.eid === params['eid'] && v.activity === '1');
    return this.legacyRows(rows.map((v) => this.views.vital(v)));
  }

  /** `GET /api/patient/{pid}/encounter/{eid}/vital/{vid}`. */
  getVital({ params }: RouteInput): EmulatorResponse {
    const row = this.t.vitals.find((v) => v.pid === params['pid'] && v.eid === params['eid'] && v.id === params['vid']);
    return row ? json(200, this.views.vital(row)) : this.legacyEmpty();
  }

  /** `POST …/vital`: 201 `{vid, fid}`; 8.0.0 stores the row and answers 500 (file 26). */
  createVital({ req, params, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
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
    if (this.v80) row.uuid = null;
    this.t.vitals.push(row);
    this.ctx.store.touch('vitals');
    if (this.v80) {
      return kernelError(
        this.ctx.version,
        500,
        'Cannot assign null to property OpenEMR\\Services\\VitalsCalculatedService::$authUserId of type int',
      );
    }
    return json(201, { vid, fid });
  }

  /** `PUT …/vital/{vid}`: 200 `{vid}`; 8.0.0 stores the change and answers 500 (file 28). */
  updateVital({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = validateFields(body, vitalRules);
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    const row = this.t.vitals.find((v) => v.pid === params['pid'] && v.eid === params['eid'] && v.id === params['vid']);
    if (!row) return this.legacyEmpty();
    for (const k of [...VITAL_NUMERIC, ...VITAL_TEXT]) if (k in body) row[k] = columnText(body[k]);
    row.date = this.now();
    this.ctx.store.touch('vitals');
    if (this.v80) {
      return kernelError(
        this.ctx.version,
        500,
        "Failed to execute statement. Error: Column 'target_uuid' cannot be null Statement: INSERT INTO `uuid_mapping`(`uuid`,`resource`,`table`,`target_uuid`,`created`,`resource_path`) VALUES (?, ?, ?, ?, NOW(), ?)",
      );
    }
    return json(200, { vid: row.id });
  }

  /**
   * `GET …/soap_note`: 404 when empty. A note is listed once more for every other form of the encounter with
   * the same form id (the `forms` join matches on the form id only: the vitals form on 8.0.0, file 30, and
   * the encounter's own form on 7.0.1, file 36).
   */
  listSoapNotes({ params }: RouteInput): EmulatorResponse {
    const rows = this.t.soapNotes.filter(
      (s) => s.pid === params['pid'] && s.eid === params['eid'] && s.activity === '1',
    );
    const out: unknown[] = [];
    for (const s of rows) {
      const collisions = this.t.vitals.filter((v) => v.pid === s.pid && v.eid === s.eid && v.id === s.id).length;
      const encounterForm = this.t.encounters.some((e) => e.pid === s.pid && e.encounter === s.eid && e.id === s.id);
      for (let i = 0; i <= collisions + (encounterForm ? 1 : 0); i++) out.push(this.views.soap(s));
    }
    return this.legacyRows(out);
  }

  /** `GET …/soap_note/{sid}`. */
  getSoapNote({ params }: RouteInput): EmulatorResponse {
    const row = this.t.soapNotes.find(
      (s) => s.pid === params['pid'] && s.eid === params['eid'] && s.id === params['sid'],
    );
    return row ? json(200, this.views.soap(row)) : this.legacyEmpty();
  }

  /** `POST …/soap_note`: 201 `{sid, fid}` (file 29); omitted parts are stored as NULL. */
  createSoapNote({ req, params, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = validateFields(body, soapRules);
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    if (!this.encounterByNumbers(params['pid'] ?? '', params['eid'] ?? '')) return this.legacyEmpty();
    const sid = this.ctx.store.nextId('form_soap.id');
    const fid = this.ctx.store.nextId('forms.id');
    this.t.soapNotes.push({
      id: String(sid),
      fid: String(fid),
      pid: params['pid'] ?? '',
      eid: params['eid'] ?? '',
      date: this.now(),
      user: user?.username ?? '',
      groupname: 'Default',
      authorized: '0',
      activity: '1',
      subjective: columnText(body['subjective']),
      objective: columnText(body['objective']),
      assessment: columnText(body['assessment']),
      plan: columnText(body['plan']),
    });
    this.ctx.store.touch('soapNotes');
    return json(201, { sid, fid });
  }

  /** `PUT …/soap_note/{sid}`: overwrites all four parts (omitted ones become NULL); 200 `{sid: "<id>"}` (file 31). */
  updateSoapNote({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
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

  private newListRow(type: ListRow['type'], pid: string, body: Record<string, unknown>): ListRow {
    const row = blankListRow({
      id: String(this.ctx.store.nextId('lists.id')),
      uuid: makeUuid(),
      pid,
      type,
      user: null,
      date: this.now(),
    });
    row.verification = '';
    this.applyList(row, body);
    return row;
  }

  /** The columns a list write takes: allergy details are not whitelisted before 8.2 (recorded). */
  private listColumns(type: ListRow['type']): readonly string[] {
    const base = ['title', 'diagnosis', 'begdate', 'enddate', 'comments', 'outcome', 'occurrence'];
    return type === 'allergy' && this.ctx.version === '8.2' ? [...base, ...ALLERGY_UNLISTED] : base;
  }

  private applyList(row: ListRow, body: Record<string, unknown>): void {
    for (const k of this.listColumns(row.type)) {
      if (!(k in body)) continue;
      const v = columnText(body[k]);
      if (k === 'begdate' || k === 'enddate' || k === 'comments' || k === 'severity_al') row[k] = v === '' ? null : v;
      else if (
        k === 'title' ||
        k === 'diagnosis' ||
        k === 'outcome' ||
        k === 'occurrence' ||
        k === 'reaction' ||
        k === 'verification'
      )
        row[k] = v ?? '';
    }
    row.date = this.now();
  }

  private issues(type: 'medical_problem' | 'allergy'): ListRow[] {
    return this.t.lists.filter((l) => l.type === type && l.activity === '1');
  }

  /** `GET /api/{type}`: every patient's rows; query parameters are ignored (file 35). */
  listAllIssues(type: 'medical_problem' | 'allergy'): (input: RouteInput) => EmulatorResponse {
    return ({ req }) =>
      this.env(
        200,
        this.issues(type).map((l) => this.views.issue(l)),
        { links: this.listLinks(req.origin) },
      );
  }

  /** `GET /api/{type}/{uuid}`. */
  getIssueGlobal(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const row = this.issues(type).find((l) => l.uuid === params[param]);
      return row ? this.env(200, this.views.issue(row)) : this.env(this.arrayStatus(404), []);
    };
  }

  /**
   * Whether the per-patient read of `type` answers nothing for rows that exist: problems and allergies on
   * 8.0.0 (files 33, 34), allergies on 7.0.1 (file 29; its per-patient problem list works, file 25).
   */
  private perPatientBroken(type: 'medical_problem' | 'allergy'): boolean {
    return this.v80 || (this.ctx.version === '7.0' && type === 'allergy');
  }

  /** `GET /api/patient/{puuid}/{type}`. */
  listIssues(type: 'medical_problem' | 'allergy'): (input: RouteInput) => EmulatorResponse {
    return ({ params, req }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      if (!patient) return this.unknownPatient(params);
      const links = this.listLinks(req.origin);
      if (this.perPatientBroken(type)) return this.env(200, [], { links });
      const rows = this.issues(type).filter((l) => l.pid === patient.pid);
      return this.env(
        200,
        rows.map((l) => this.views.issue(l)),
        { links },
      );
    };
  }

  /** `GET /api/patient/{puuid}/{type}/{uuid}`: `data: []` on 8.0.0 and 7.0.1 for existing rows (file 34). */
  getIssue(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ params, req }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const row = patient && this.issues(type).find((l) => l.pid === patient.pid && l.uuid === params[param]);
      if (this.ctx.version !== '8.2') return this.env(200, [], { links: this.listLinks(req.origin) });
      return row ? this.env(200, this.views.issue(row)) : this.env(this.arrayStatus(404), []);
    };
  }

  /** `POST /api/patient/{puuid}/{type}`: problems need `title` and `begdate`, allergies `title`; 200 on 8.x (file 32). */
  createIssue(type: 'medical_problem' | 'allergy'): (input: RouteInput) => EmulatorResponse {
    return ({ req, params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const body = decodePhpBody(bodyText(req));
      const errors: Record<string, unknown> = validateFields(body, listRules(['Y-m-d'], type === 'medical_problem'));
      if (!patient) Object.assign(errors, this.unknownUuid('puuid', params['puuid'] ?? ''));
      if (Object.keys(errors).length > 0 || !patient)
        return this.env(this.arrayStatus(400), [], { validationErrors: errors });
      const row = this.newListRow(type, patient.pid, body);
      this.t.lists.push(row);
      this.ctx.store.touch('lists');
      return this.env(this.arrayStatus(201), { id: Number(row.id), uuid: row.uuid });
    };
  }

  /**
   * `PUT /api/patient/{puuid}/{type}/{uuid}`: partial update. On 8.0.0 an update of only fields that are not
   * whitelisted leaves nothing to write and answers 500 (file 39).
   */
  updateIssue(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ req, params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const row = patient && this.issues(type).find((l) => l.pid === patient.pid && l.uuid === params[param]);
      const body = decodePhpBody(bodyText(req));
      const rules = listRules(['Y-m-d'], false).map((r) => ({ ...r, required: false }));
      const errors: Record<string, unknown> = validateFields(body, rules);
      if (!row) Object.assign(errors, this.unknownUuid(param, params[param] ?? ''));
      if (Object.keys(errors).length > 0 || !row)
        return this.env(this.arrayStatus(400), [], { validationErrors: errors });
      if (this.v80 && !Object.keys(body).some((k) => this.listColumns(type).includes(k))) {
        return kernelError(
          this.ctx.version,
          500,
          'count(): Argument #1 ($value) must be of type Countable|array, string given',
        );
      }
      this.applyList(row, body);
      this.ctx.store.touch('lists');
      return this.env(200, this.views.issue(row));
    };
  }

  /** `DELETE /api/patient/{puuid}/{type}/{uuid}`: an unknown uuid answers 200 `{UUID: [...]}` on 8.x (file 37). */
  deleteIssue(type: 'medical_problem' | 'allergy', param: string): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const patient = this.patientByUuid(params['puuid'] ?? '');
      const index = patient
        ? this.t.lists.findIndex((l) => l.type === type && l.pid === patient.pid && l.uuid === params[param])
        : -1;
      if (index < 0) {
        return this.k8
          ? this.env(200, [], { validationErrors: { UUID: ['invalid or nonexisting value'] } })
          : this.env(400, [], { validationErrors: this.unknownUuid(param, params[param] ?? '') });
      }
      this.t.lists.splice(index, 1);
      this.ctx.store.touch('lists');
      return this.env(200, []);
    };
  }

  // --------------------------------------------------------------- medication

  /** Medication dates: 7.0.1 takes `Y-m-d` only (file 32), 8.x a date-time too (file 40). */
  private medicationRules(insert: boolean): FieldRule[] {
    const formats = this.k8 ? (['Y-m-d H:i:s', 'Y-m-d'] as const) : (['Y-m-d'] as const);
    // 8.x needs the whole record in an update too (file 42).
    return listRules(formats, insert || this.k8).map((r) => ({
      ...r,
      required: r.field === 'title' ? insert || this.k8 : insert && r.required,
    }));
  }

  private medications(pid: string): ListRow[] {
    return this.t.lists.filter((l) => l.type === 'medication' && l.pid === pid && l.activity === '1');
  }

  /** `GET /api/patient/{pid}/medication`: 404 when none (7.0.1 file 31); 8.0.0 answers 500 once the API added one (file 41). */
  listMedications({ params }: RouteInput): EmulatorResponse {
    const rows = this.medications(params['pid'] ?? '');
    if (rows.some((r) => r.uuid === null)) {
      return kernelError(
        this.ctx.version,
        500,
        'Ramsey\\Uuid\\Uuid::fromBytes(): Argument #1 ($bytes) must be of type string, null given, called in /var/www/openemr/src/Common/Uuid/UuidRegistry.php on line 287',
      );
    }
    return this.legacyRows(rows.map((r) => this.views.medication(r)));
  }

  /** `GET /api/patient/{pid}/medication/{mid}`. */
  getMedication({ params }: RouteInput): EmulatorResponse {
    const row = this.medications(params['pid'] ?? '').find((l) => l.id === params['mid']);
    return row ? json(200, this.views.medication(row)) : this.legacyEmpty();
  }

  /** `POST /api/patient/{pid}/medication`: 201 `{id}` (file 40); 8.0.0 registers no uuid for the row. */
  createMedication({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = validateFields(body, this.medicationRules(true));
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    if (!this.patientByPid(params['pid'] ?? '')) return this.legacyEmpty();
    const row = this.newListRow('medication', params['pid'] ?? '', body);
    if (this.v80) row.uuid = null;
    this.t.lists.push(row);
    this.ctx.store.touch('lists');
    return json(201, { id: Number(row.id) });
  }

  /** `PUT /api/patient/{pid}/medication/{mid}`: 200 `{id}`; 8.x wants the whole record (file 42). */
  updateMedication({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = validateFields(body, this.medicationRules(false));
    if (Object.keys(errors).length > 0) return this.legacyInvalid(errors);
    const row = this.medications(params['pid'] ?? '').find((l) => l.id === params['mid']);
    if (!row) return this.legacyEmpty();
    this.applyList(row, body);
    this.ctx.store.touch('lists');
    return json(200, { id: Number(row.id) });
  }

  /** `DELETE /api/patient/{pid}/medication/{mid}`: `true`; 8.0.0 deletes and answers 500 (file 44). */
  deleteMedication({ params }: RouteInput): EmulatorResponse {
    const index = this.t.lists.findIndex(
      (l) => l.type === 'medication' && l.pid === params['pid'] && l.id === params['mid'],
    );
    if (index < 0) return this.legacyEmpty();
    this.t.lists.splice(index, 1);
    this.ctx.store.touch('lists');
    if (this.v80) {
      return kernelError(
        this.ctx.version,
        500,
        'RestControllerHelper::getResponseForPayload() expects a string, array, numeric, or JsonSerializable object, bool given.',
      );
    }
    return json(200, true);
  }

  // ------------------------------------------------------------- prescription

  /** `GET /api/prescription`: prescriptions and medication-list entries (file 46), by `patient.uuid`. */
  listPrescriptions({ query, req }: RouteInput): EmulatorResponse {
    const patientUuid = query.get('patient.uuid');
    const patient = patientUuid === null ? undefined : this.patientByUuid(patientUuid);
    const mine = (pid: string): boolean => patientUuid === null || pid === patient?.pid;
    const rows = [
      ...this.t.prescriptions.filter((r) => r.active === '1' && mine(r.pid)).map((r) => this.views.prescription(r)),
      ...this.t.lists
        .filter((l) => l.type === 'medication' && l.activity === '1' && mine(l.pid))
        .map((l) => this.views.prescriptionFromList(l)),
    ];
    return this.env(200, rows, { links: this.listLinks(req.origin, query) });
  }

  /** `GET /api/prescription/{uuid}`: 8.0.0 answers an SQL error page with 200 (file 47). */
  getPrescription({ params }: RouteInput): EmulatorResponse {
    if (this.v80) {
      return {
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body:
          'SQL Statement failed on preparation: SELECT combined_prescriptions.uuid FROM ( … ) combined_prescriptions ' +
          "WHERE combined_prescriptions.uuid = ?' Error: Unknown column '_id' in 'where clause'",
      };
    }
    const row = this.t.prescriptions.find((r) => r.uuid === params['uuid'] && r.active === '1');
    return row ? this.env(200, this.views.prescription(row)) : this.env(404, []);
  }

  /** `POST /api/prescription` (8.2 only): `drug` and numeric `patient_id` required; 201 `{id, uuid}`. */
  createPrescription({ req, user }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors: Record<string, unknown> = validateFields(body, [
      { field: 'drug', label: 'Drug', required: true, rules: [{ kind: 'lengthBetween', min: 1, max: 150 }] },
      { field: 'patient_id', label: 'Patient Id', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'quantity', required: false, allowEmpty: true, rules: [{ kind: 'lengthBetween', min: 1, max: 31 }] },
      { field: 'dosage', required: false, allowEmpty: true, rules: [{ kind: 'lengthBetween', min: 1, max: 100 }] },
      { field: 'start_date', required: false, allowEmpty: true, rules: [{ kind: 'datetime', format: ['Y-m-d'] }] },
    ]);
    const pid = columnText(body['patient_id']) ?? '';
    if (!('patient_id' in errors) && !this.patientByPid(pid))
      errors['patient_id'] = { 'Callback::INVALID_VALUE': 'Patient Id must be an existing patient' };
    if (Object.keys(errors).length > 0) return this.env(400, [], { validationErrors: errors });
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
    return this.env(201, { id, uuid: row.uuid });
  }

  /** `DELETE /api/prescription/{uuid}` (8.2 only): soft delete. */
  deletePrescription({ params }: RouteInput): EmulatorResponse {
    const row = this.t.prescriptions.find((r) => r.uuid === params['uuid'] && r.active === '1');
    if (!row) return this.env(404, []);
    row.active = '0';
    this.ctx.store.touch('prescriptions');
    return this.env(200, []);
  }

  // ---------------------------------------------------------------- procedure

  private procedureView(p: (typeof this.t.procedures)[number]): Record<string, unknown> {
    const patient = this.patientByPid(p.pid);
    return { ...p, puuid: patient?.uuid ?? null };
  }

  /** `GET /api/procedure`: every patient's orders, no filters honoured; 8.0.0 answers 500 (file 48). */
  listProcedures(): EmulatorResponse {
    if (this.v80) {
      return {
        status: 500,
        headers: { 'content-type': 'application/json' },
        body:
          "<h2><font color='red'>Query Error</font></h2><p><font color='red'>ERROR:</font> query failed: SELECT DISTINCT " +
          'porder.uuid … LEFT JOIN WHERE porder.activity = 1 ORDER BY porder.date_ordered DESC</p><p>Error: ' +
          "<font color='red'>You have an error in your SQL syntax; check the manual that corresponds to your MariaDB " +
          "server version for the right syntax to use near 'WHERE porder.activity = 1 ORDER BY porder.date_ordered DESC' " +
          'at line 31</font></p>{"error":"An error occurred","message":"Object of class OpenEMR\\\\Core\\\\OEGlobalsBag could not be converted to string","code":0}',
      };
    }
    return this.env(
      200,
      this.t.procedures.map((p) => this.procedureView(p)),
    );
  }

  /** `GET /api/procedure/{uuid}`. */
  getProcedure({ params }: RouteInput): EmulatorResponse {
    const row = this.t.procedures.find((p) => p.uuid === params['uuid']);
    return row ? this.env(200, this.procedureView(row)) : this.env(this.arrayStatus(404), []);
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
    return this.legacyRows(
      this.t.appointments.filter((a) => a.pc_eid === params['eid']).map((a) => this.appointmentView(a)),
    );
  }

  /** `GET /api/patient/{pid}/appointment`: 404 when none. */
  listAppointments({ params }: RouteInput): EmulatorResponse {
    return this.legacyRows(
      this.t.appointments.filter((a) => a.pid === params['pid']).map((a) => this.appointmentView(a)),
    );
  }

  /** `GET /api/patient/{pid}/appointment/{eid}`: an array of one row. */
  getAppointment({ params }: RouteInput): EmulatorResponse {
    return this.legacyRows(
      this.t.appointments
        .filter((a) => a.pid === params['pid'] && a.pc_eid === params['eid'])
        .map((a) => this.appointmentView(a)),
    );
  }

  /**
   * `POST /api/patient/{pid}/appointment`: nine fields required, `pc_startTime` exactly `HH:MM`, and on 8.x a
   * non-empty `pc_hometext` (file 49); 200 `{id}`.
   */
  createAppointment({ req, params }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = validateFields(body, [
      { field: 'pc_catid', required: true, rules: [{ kind: 'numeric' }] },
      { field: 'pc_title', required: true, rules: [{ kind: 'lengthBetween', min: 2, max: 150 }] },
      { field: 'pc_duration', required: true, rules: [{ kind: 'numeric' }] },
      {
        field: 'pc_hometext',
        label: 'pc hometext',
        required: true,
        allowEmpty: !this.k8,
        rules: [{ kind: 'lengthBetween', min: 0, max: null }],
      },
      { field: 'pc_apptstatus', required: true, rules: [{ kind: 'inList', values: APPT_STATUSES }] },
      { field: 'pc_eventDate', required: true, rules: [{ kind: 'datetime', format: ['Y-m-d'] }] },
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
    this.t.appointments.push({
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
    });
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
    return { ...rest, id: Number(u.id), facility: facility?.name ?? null, facility_uuid: facility?.uuid ?? null };
  }

  private practitioners(): UserRow[] {
    return this.t.users.filter((u) => u.npi !== '');
  }

  /** A practitioner as a read can find it: 8.0.0 cannot show one without a username (file 52). */
  private readablePractitioner(uuid: string): UserRow | undefined {
    return this.practitioners().find((u) => u.uuid === uuid && !(this.v80 && u.username === ''));
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
    return this.env(
      200,
      rows.map((u) => this.practitionerView(u)),
    );
  }

  /** `GET /api/practitioner/{pruuid}`: 8.0.0 answers 404 `data: []` for one without a username (file 52). */
  getPractitioner({ params }: RouteInput): EmulatorResponse {
    const row = this.readablePractitioner(params['pruuid'] ?? '');
    if (row) return this.env(200, this.practitionerView(row));
    if (this.v80 && this.practitioners().some((u) => u.uuid === params['pruuid'])) return this.env(404, []);
    return this.env(400, [], { validationErrors: this.unknownUuid('uuid', params['pruuid'] ?? '') });
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

  /** `POST /api/practitioner`: 201 `{id, uuid}` (file 51); the user has no username. */
  createPractitioner({ req }: RouteInput): EmulatorResponse {
    const body = decodePhpBody(bodyText(req));
    const errors = this.practitionerErrors(body, true);
    if (Object.keys(errors).length > 0) return this.env(400, [], { validationErrors: errors });
    const id = this.ctx.store.nextId('users.id');
    const row = blankUserRow(String(id), makeUuid());
    this.applyPractitioner(row, body);
    this.t.users.push(row);
    this.ctx.store.touch('users');
    return this.env(201, { id, uuid: row.uuid });
  }

  /** `PUT /api/practitioner/{pruuid}`: 200 with the record; 8.0.0 answers `data: []` (file 53). */
  updatePractitioner({ req, params }: RouteInput): EmulatorResponse {
    const row = this.practitioners().find((u) => u.uuid === params['pruuid']);
    const body = decodePhpBody(bodyText(req));
    const errors = this.practitionerErrors(body, false);
    if (!row) Object.assign(errors, this.unknownUuid('uuid', params['pruuid'] ?? ''));
    if (Object.keys(errors).length > 0 || !row) return this.env(400, [], { validationErrors: errors });
    this.applyPractitioner(row, body);
    this.ctx.store.touch('users');
    return this.env(200, this.v80 ? [] : this.practitionerView(row));
  }

  // --------------------------------------------------------------------- misc

  /** `GET /api/version` (no auth): the `version` table row. */
  version(): EmulatorResponse {
    const [major, minor, patch] = { '7.0': ['7', '0', '1'], '8.0': ['8', '0', '0'], '8.2': ['8', '2', '0'] }[
      this.ctx.version
    ];
    return json(200, {
      v_major: major,
      v_minor: minor,
      v_patch: patch,
      v_realpatch: '0',
      v_tag: this.ctx.version === '8.2' ? '-dev' : '',
      v_database: this.ctx.version === '7.0' ? '497' : this.ctx.version === '8.0' ? '531' : '541',
      v_acl: '12',
    });
  }

  /** `GET /api/product` (no auth). */
  product(): EmulatorResponse {
    return json(200, {
      name: 'OpenEMR',
      version: { '7.0': '7.0.1', '8.0': '8.0.0', '8.2': '8.2.0-dev' }[this.ctx.version],
    });
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
