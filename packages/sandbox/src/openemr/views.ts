/**
 * The JSON a standard-API route answers for a stored row, column for column as OpenEMR serialises it
 * (recorded-8.0.0 and recorded-7.0.1): integer columns as numbers on both recorded releases, decimals with
 * six places (`"150.500000"`), the 8.x-only columns left out on 7.0, and the joined uuids and titles.
 */
import {
  ALLERGY_COLUMNS,
  ENCOUNTER_COLUMNS,
  ENCOUNTER_COLUMNS_SINCE_8,
  PATIENT_COLUMNS,
  PATIENT_COLUMNS_SINCE_8,
  PRESCRIPTION_COLUMNS,
  PROBLEM_COLUMNS,
  PROBLEM_COLUMNS_SINCE_8,
  SOAP_COLUMNS,
  VITAL_COLUMNS,
  type Column,
} from './columns.js';
import { isKernel8, type OpenEmrVersion } from './context.js';
import type { OpenEmrTables } from './store.js';
import type { EncounterRow, ListRow, PatientRow, PrescriptionRow, SoapNoteRow, VitalRow } from './types.js';

/** Encounter classes (`_ActEncounterCode`) and their titles. */
export const ENCOUNTER_CLASSES: Readonly<Record<string, string>> = {
  AMB: 'ambulatory',
  EMER: 'emergency',
  IMP: 'inpatient encounter',
  ACUTE: 'inpatient acute',
  OBSENC: 'observation encounter',
  VR: 'virtual',
  HH: 'home health',
};

/** Appointment/encounter categories (`openemr_postcalendar_categories`). */
export const CATEGORIES: Readonly<Record<string, string>> = {
  '5': 'Office Visit',
  '9': 'Established Patient',
  '10': 'New Patient',
  '12': 'Health and Behavioral Assessment',
  '13': 'Preventive Care Services',
  '14': 'Ophthalmological Services',
  '15': 'Group Therapy',
};

/** A stored text value as the column's JSON type: integer columns (fresh value a number) as numbers. */
function typed(value: string | number | null | undefined, fresh: string | number | null): unknown {
  if (value === undefined) return fresh;
  if (value === null) return null;
  if (typeof fresh === 'number') {
    const n = Number(value);
    return Number.isFinite(n) && String(value).trim() !== '' ? n : fresh;
  }
  return typeof value === 'number' ? String(value) : value;
}

/** An integer column whose fresh value is NULL: the number, or null. */
function integer(value: unknown): number | null {
  return value === null || value === undefined || value === '' ? null : Number(value);
}

/** Builds a row view from columns: stored values where there are, fresh values elsewhere. */
function fromColumns(
  columns: readonly Column[],
  values: Record<string, string | number | null | undefined>,
  skip?: ReadonlySet<string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, fresh] of columns) {
    if (skip?.has(name)) continue;
    out[name] = typed(values[name], fresh);
  }
  return out;
}

/** A number as OpenEMR's DECIMAL(12,6) columns answer it: `"150.500000"`; null stays null. */
export function decimal(value: string | null | undefined): string | null {
  if (value === null || value === undefined || value.trim() === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(6) : value;
}

/** The vitals columns stored as `decimal(12,6)`: they come back with six places (`"150.500000"`). */
export const VITAL_DECIMALS = [
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

/** The views of one emulator. */
export class Views {
  constructor(
    private readonly tables: () => OpenEmrTables,
    private readonly version: OpenEmrVersion,
  ) {}

  private get t(): OpenEmrTables {
    return this.tables();
  }

  private get k8(): boolean {
    return isKernel8(this.version);
  }

  /** A patient as `/api/patient` answers it (file 12 / 7.0.1 file 10). */
  patient(row: PatientRow): Record<string, unknown> {
    const view = fromColumns(PATIENT_COLUMNS, row, this.k8 ? undefined : PATIENT_COLUMNS_SINCE_8);
    view['updated_by'] = integer(row['updated_by']);
    view['suffix'] = row['suffix'] ?? null;
    view['previous_names'] = [];
    view['addresses'] = [
      {
        id: null,
        contact_id: null,
        contact_address_id: null,
        period_start: row.regdate,
        period_end: null,
        type: 'both',
        use: 'home',
        priority: 0,
        line1: row.street,
        line2: '',
        city: row.city,
        district: '',
        state: row.state,
        postal_code: row.postal_code,
        country_code: row.country_code,
      },
    ];
    return view;
  }

  /** An encounter as the encounter routes answer it (file 19 / 7.0.1 file 19). */
  encounter(e: EncounterRow): Record<string, unknown> {
    const patient = this.t.patients.find((p) => p.pid === e.pid);
    const facility = e.facility_id === null ? undefined : this.t.facilities.find((f) => f.id === e.facility_id);
    const billing = this.t.facilities.find((f) => f.id === e.billing_facility);
    const provider = this.t.users.find((u) => u.id === e.provider_id);
    const values: Record<string, string | number | null> = {
      eid: e.encounter,
      euuid: e.uuid,
      date: e.date,
      reason: e.reason,
      onset_date: e.onset_date,
      sensitivity: e.sensitivity === '' ? null : e.sensitivity,
      pc_catid: e.pc_catid,
      referral_source: e.referral_source,
      billing_facility: e.billing_facility === '' ? '0' : e.billing_facility,
      external_id: e.external_id === '' ? null : e.external_id,
      last_update: e.last_update,
      pos_code: e.pos_code === '' ? null : e.pos_code,
      class_code: e.class_code,
      class_title: ENCOUNTER_CLASSES[e.class_code] ?? null,
      pc_catname: CATEGORIES[e.pc_catid] ?? null,
      pid: e.pid,
      puuid: patient?.uuid ?? null,
      facility_id: facility?.id ?? null,
      facility_uuid: facility?.uuid ?? null,
      facility_name: facility?.name ?? null,
      facility_location_uuid: facility ? (facility.location_uuid ?? facility.uuid) : null,
      billing_facility_id: billing?.id ?? null,
      billing_facility_uuid: billing?.uuid ?? null,
      billing_facility_name: billing?.name ?? null,
      billing_location_uuid: billing ? (billing.location_uuid ?? billing.uuid) : null,
      provider_id: e.provider_id === '' ? '0' : e.provider_id,
      provider_uuid: provider?.uuid ?? null,
      provider_username: provider?.username || null,
    };
    const view = fromColumns(ENCOUNTER_COLUMNS, values, this.k8 ? undefined : ENCOUNTER_COLUMNS_SINCE_8);
    delete view['encounter'];
    for (const k of ['facility_id', 'billing_facility_id']) view[k] = integer(view[k]);
    return view;
  }

  /** A problem's or allergy's `diagnosis` as OpenEMR answers it: an object keyed by code, or null. */
  diagnosis(text: string | null): Record<string, unknown> | null {
    if (text === null || text.trim() === '') return null;
    const system = (type: string): string | null => {
      if (type === 'ICD10') return this.k8 ? 'http://hl7.org/fhir/sid/icd-10' : '2.16.840.1.113883.6.90';
      if (type === 'SNOMED-CT') return 'http://snomed.info/sct';
      if (type === 'RXCUI') return 'http://www.nlm.nih.gov/research/umls/rxnorm';
      return null;
    };
    const out: Record<string, unknown> = {};
    for (const part of text.split(';')) {
      const [type, code] = part.includes(':') ? part.split(':', 2) : ['', part];
      if (!code) continue;
      out[code] = { code, description: '', code_type: type || null, system: system(type ?? '') };
    }
    return out;
  }

  /** A problem or allergy as the issue routes answer it (file 35 / 7.0.1 files 25, 30). */
  issue(row: ListRow): Record<string, unknown> {
    const patient = this.t.patients.find((p) => p.pid === row.pid);
    const values: Record<string, string | number | null> = {
      ...row,
      begdate: row.begdate === null || row.begdate.length > 10 ? row.begdate : `${row.begdate} 00:00:00`,
      enddate: row.enddate === null || row.enddate.length > 10 ? row.enddate : `${row.enddate} 00:00:00`,
      groupname: row.user === null ? null : 'Default',
      modifydate: row.date,
      last_updated_time: row.date,
      patient_id: row.pid,
      puuid: patient?.uuid ?? null,
      patient_uuid: patient?.uuid ?? null,
      condition_uuid: row.uuid,
      allergy_uuid: row.uuid,
      verification_title: null,
    };
    const view =
      row.type === 'allergy'
        ? fromColumns(ALLERGY_COLUMNS, values)
        : fromColumns(PROBLEM_COLUMNS, values, this.k8 ? undefined : PROBLEM_COLUMNS_SINCE_8);
    if (row.type === 'allergy' && this.k8) view['last_updated_time'] = row.date;
    view['diagnosis'] = this.diagnosis(row.diagnosis);
    return view;
  }

  /** A medication-list row as the legacy medication routes answer it (the raw `lists` row). */
  medication(row: ListRow): Record<string, unknown> {
    const view = fromColumns(PROBLEM_COLUMNS, {
      ...row,
      groupname: row.user === null ? null : 'Default',
      modifydate: row.date,
    });
    const dropped = new Set<string>([
      ...PROBLEM_COLUMNS_SINCE_8,
      ...['patient_id', 'encounter_uuid', 'puuid', 'patient_uuid', 'condition_uuid'],
      ...['verification_title', 'provider_id', 'provider_npi', 'provider_uuid', 'provider_username'],
    ]);
    return Object.fromEntries(Object.entries(view).filter(([k]) => !dropped.has(k)));
  }

  /** A vitals form as the vitals routes answer it (7.0.1 file 23): decimals with six places, units. */
  vital(v: VitalRow): Record<string, unknown> {
    const patient = this.t.patients.find((p) => p.pid === v.pid);
    const encounter = this.t.encounters.find((e) => e.pid === v.pid && e.encounter === v.eid);
    const values: Record<string, string | number | null> = {
      ...v,
      puuid: patient?.uuid ?? null,
      euuid: encounter?.uuid ?? null,
      form_id: v.id,
      user_uuid: null,
      user_npi: null,
      external_id: null,
    };
    for (const k of VITAL_DECIMALS) values[k] = decimal(v[k]);
    return fromColumns(VITAL_COLUMNS, values);
  }

  /** A SOAP note as the SOAP routes answer it (file 30): no encounter column, integers as numbers. */
  soap(s: SoapNoteRow): Record<string, unknown> {
    return fromColumns(SOAP_COLUMNS, { ...s, user: null, groupname: null, authorized: '0' });
  }

  /** A prescription (`source_table: prescriptions`) as `/api/prescription` answers it (file 46). */
  prescription(r: PrescriptionRow): Record<string, unknown> {
    const patient = this.t.patients.find((p) => p.pid === r.pid);
    const encounter = r.encounter === null ? undefined : this.t.encounters.find((e) => e.encounter === r.encounter);
    const provider = this.t.users.find((u) => u.id === r.provider_id);
    const values: Record<string, string | number | null> = {
      uuid: r.uuid,
      source_table: 'prescriptions',
      drug: r.drug,
      active: r.active,
      intent: 'order',
      category: 'community',
      intent_title: 'Order',
      category_title: 'Home/Community',
      category_text: 'Community',
      rxnorm_drugcode: r.rxnorm_drugcode || null,
      date_added: r.date_added,
      unit: r.unit || null,
      interval: r.interval || null,
      route: r.route || null,
      note: r.note || null,
      status: r.active === '1' ? 'active' : 'completed',
      dosage: r.dosage || null,
      date_modified: r.date_added,
      quantity: r.quantity || null,
      puuid: patient?.uuid ?? null,
      euuid: encounter?.uuid ?? null,
      pruuid: provider?.uuid ?? null,
      request_intent_title: 'Order',
    };
    const view = fromColumns(PRESCRIPTION_COLUMNS, values);
    view['drugcode'] = r.rxnorm_drugcode
      ? { [r.rxnorm_drugcode]: { code: r.rxnorm_drugcode, description: r.drug, code_type: null, system: null } }
      : null;
    return view;
  }

  /** A medication-list entry as `/api/prescription` lists it (`source_table: lists`, file 46). */
  prescriptionFromList(l: ListRow): Record<string, unknown> {
    const patient = this.t.patients.find((p) => p.pid === l.pid);
    const values: Record<string, string | number | null> = {
      uuid: l.uuid,
      source_table: 'lists',
      drug: l.title,
      active: l.activity,
      intent: 'plan',
      category: null,
      intent_title: 'Plan',
      category_title: null,
      category_text: 'Community',
      rxnorm_drugcode: null,
      date_added: l.date,
      status: 'active',
      date_modified: l.date,
      diagnosis: l.diagnosis || null,
      puuid: patient?.uuid ?? null,
    };
    const view = fromColumns(PRESCRIPTION_COLUMNS, values);
    delete view['request_intent_title'];
    for (const k of ['dosage', 'quantity', 'unit', 'interval', 'route', 'note']) view[k] = null;
    return view;
  }
}
