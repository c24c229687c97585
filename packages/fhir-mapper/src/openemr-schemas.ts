/**
 * zod schemas of the OpenEMR standard-API records the mapper reads, with OpenEMR's own field names
 * (`fname`, `lname`, `DOB`, `sex`, `uuid`, `pid`, ...; see `shared/notes/openemr.md` §3). OpenEMR sends
 * numbers as strings and missing dates as `null`, `""` or `0000-00-00`; the schemas accept those.
 * Unknown fields are ignored.
 * @packageDocumentation
 */
import { z } from 'zod';

const blankToUndefined = (v: unknown): unknown =>
  v === null || v === '' || v === '0000-00-00' || v === '0000-00-00 00:00:00' ? undefined : v;

/** An optional string field: `null` and `""` read as absent. */
const optText = z.preprocess(blankToUndefined, z.string().optional());
/** A numeric id (OpenEMR sends `"12"` or `12`), as a string. */
const numericId = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).transform(String);
const optNumericId = z.preprocess(blankToUndefined, numericId.optional());
/** A UUID as OpenEMR formats it (lower-case hex with dashes). */
const uuid = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'Expected a UUID');
const optUuid = z.preprocess(blankToUndefined, uuid.optional());
/** `YYYY-MM-DD`. */
const ymd = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'Expected YYYY-MM-DD');
/** `YYYY-MM-DD` or `YYYY-MM-DD HH:MM[:SS]` (server local time, no zone). */
const ymdTime = z
  .string()
  .regex(
    /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?)?$/,
    'Expected YYYY-MM-DD[ HH:MM:SS]',
  );
const optYmdTime = z.preprocess(blankToUndefined, ymdTime.optional());
/** A measurement: number or numeric string; OpenEMR stores an unmeasured vital as 0, which reads as absent. */
const measurement = z.preprocess((v) => {
  const b = blankToUndefined(v);
  if (b === undefined) return undefined;
  const n = typeof b === 'string' ? Number(b) : b;
  return n === 0 ? undefined : n;
}, z.number().finite().positive().optional());
/** `1`/`0` flags as OpenEMR sends them. */
const flag = z.preprocess((v) => (v === null || v === '' ? undefined : String(v)), z.enum(['0', '1']).optional());

/** A patient row (`GET /api/patient/{puuid}` data). */
export const openEmrPatientSchema = z.object({
  uuid: uuid,
  pid: numericId,
  pubpid: optText,
  title: optText,
  fname: z.string().trim().min(1),
  mname: optText,
  lname: z.string().trim().min(1),
  suffix: optText,
  DOB: z.preprocess(blankToUndefined, ymd.optional()),
  sex: optText,
  street: optText,
  city: optText,
  state: optText,
  postal_code: optText,
  country_code: optText,
  phone_home: optText,
  phone_cell: optText,
  phone_biz: optText,
  phone_contact: optText,
  email: z.preprocess(blankToUndefined, z.email().optional()),
  deceased_date: optYmdTime,
});
/** A patient as OpenEMR's standard API returns it. */
export type OpenEmrPatient = z.output<typeof openEmrPatientSchema>;

/** The patient fields the mapper writes back to OpenEMR (`POST`/`PUT /api/patient`). */
export interface OpenEmrPatientWrite {
  fname: string;
  lname: string;
  mname?: string;
  title?: string;
  suffix?: string;
  /** `YYYY-MM-DD`. */
  DOB?: string;
  /** `Male`, `Female` or `Unknown` (OpenEMR's validator wants 4–30 characters, so never `UNK`). */
  sex?: 'Male' | 'Female' | 'Unknown';
  street?: string;
  city?: string;
  state?: string;
  postal_code?: string;
  country_code?: string;
  phone_home?: string;
  phone_cell?: string;
  phone_biz?: string;
  email?: string;
  /** From the patient's identifiers, when present (read-only in OpenEMR). */
  uuid?: string;
  pid?: string;
  pubpid?: string;
}

/** An encounter (`GET /api/patient/{puuid}/encounter/{euuid}` data). */
export const openEmrEncounterSchema = z.object({
  euuid: uuid,
  eid: optNumericId,
  puuid: optUuid,
  pid: optNumericId,
  date: ymdTime,
  onset_date: optYmdTime,
  reason: optText,
  class_code: optText,
  pc_catname: optText,
  facility_name: optText,
  discharge_disposition: optText,
});
/** An encounter as OpenEMR's standard API returns it. */
export type OpenEmrEncounter = z.output<typeof openEmrEncounterSchema>;

/** The `lists` columns shared by medical problems, allergies and medications. */
const listBase = {
  title: z.string().trim().min(1),
  begdate: optYmdTime,
  enddate: optYmdTime,
  /** Codes like `ICD10:C71.9` or `ICD10:C71.9;SNOMED-CT:393563007`. */
  diagnosis: optText,
  comments: optText,
  activity: flag,
  puuid: optUuid,
  pid: optNumericId,
};

/** A medical problem (`lists` row of type medical_problem). */
export const openEmrProblemSchema = z.object({
  uuid: uuid,
  ...listBase,
  verification: optText,
  outcome: optText,
});
/** A medical problem as OpenEMR's standard API returns it. */
export type OpenEmrProblem = z.output<typeof openEmrProblemSchema>;

/** An allergy (`lists` row of type allergy). */
export const openEmrAllergySchema = z.object({
  uuid: uuid,
  ...listBase,
  reaction: optText,
  /** OpenEMR's severity list: mild, mild_to_moderate, moderate, moderate_to_severe, severe, life_threatening_severity, fatal, unassigned. */
  severity_al: optText,
  verification: optText,
});
/** An allergy as OpenEMR's standard API returns it. */
export type OpenEmrAllergy = z.output<typeof openEmrAllergySchema>;

/** A medication-list entry (legacy raw route `GET /api/patient/{pid}/medication`; numeric id, no uuid). */
export const openEmrMedicationSchema = z.object({
  id: numericId,
  uuid: optUuid,
  ...listBase,
});
/** A medication-list entry as OpenEMR's standard API returns it. */
export type OpenEmrMedication = z.output<typeof openEmrMedicationSchema>;

/** A prescription (`GET /api/prescription/{uuid}` data). */
export const openEmrPrescriptionSchema = z.object({
  uuid: uuid,
  puuid: optUuid,
  pid: optNumericId,
  drug: z.string().trim().min(1),
  rxnorm_drugcode: optText,
  dosage: optText,
  quantity: optText.or(z.number().transform(String)),
  route: optText,
  unit: optText,
  interval: optText,
  date_added: optYmdTime,
  start_date: optYmdTime,
  end_date: optYmdTime,
  active: flag,
  note: optText,
});
/** A prescription as OpenEMR's standard API returns it. */
export type OpenEmrPrescription = z.output<typeof openEmrPrescriptionSchema>;

const optUnit = optText;

/** A vitals row (legacy raw route `GET /api/patient/{pid}/encounter/{eid}/vital`). */
export const openEmrVitalsSchema = z
  .object({
    id: optNumericId,
    uuid: optUuid,
    date: ymdTime,
    pid: optNumericId,
    puuid: optUuid,
    eid: optNumericId,
    bps: measurement,
    bpd: measurement,
    weight: measurement,
    height: measurement,
    temperature: measurement,
    pulse: measurement,
    respiration: measurement,
    BMI: measurement,
    oxygen_saturation: measurement,
    head_circ: measurement,
    waist_circ: measurement,
    /** Units OpenEMR reports beside the values: `lb`/`kg`, `in`/`cm`, `degF`/`Cel`. US units when absent. */
    weight_unit: optUnit,
    height_unit: optUnit,
    temperature_unit: optUnit,
    head_circ_unit: optUnit,
    waist_circ_unit: optUnit,
    temp_method: optText,
    note: optText,
  })
  .refine((v) => v.uuid !== undefined || v.id !== undefined, {
    message: 'A vitals row needs uuid or id',
    path: ['uuid'],
  });
/** A vitals row as OpenEMR's standard API returns it. */
export type OpenEmrVitals = z.output<typeof openEmrVitalsSchema>;
