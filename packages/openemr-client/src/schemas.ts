/**
 * zod schemas and types for every request the client sends and every response it reads. They are
 * written from OpenEMR's OpenAPI spec as corrected by how its code behaves (shared/notes/openemr.md),
 * independently of the sandbox emulator. Response schemas are loose (OpenEMR returns whole table rows
 * and adds columns between versions) but check the fields the client relies on, and normalise numeric
 * identifiers, which MySQL returns as strings, to numbers.
 * @packageDocumentation
 */
import { z } from 'zod';

// ------------------------------------------------------------------ primitives

/** A numeric identifier, as a number or a numeric string (MySQL rows), normalised to a number. */
export const numericIdSchema = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+$/, 'must be a numeric id')])
  .transform((v) => Number(v));

const nullableText = z.string().nullable().optional();

const YMD = /^(\d{4})-(\d{2})-(\d{2})$/;

function isRealDate(y: number, m: number, d: number): boolean {
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

/**
 * A calendar date as OpenEMR's `Y-m-d`: accepts `YYYY-MM-DD` or a `Date` (its UTC date). Invalid dates
 * such as `2024-02-30` are refused.
 */
export const dateInputSchema = z.union([z.date(), z.string()]).transform((value, ctx) => {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'must be a valid date' });
      return z.NEVER;
    }
    return value.toISOString().slice(0, 10);
  }
  const m = YMD.exec(value);
  if (!m || !isRealDate(Number(m[1]), Number(m[2]), Number(m[3]))) {
    ctx.addIssue({ code: 'custom', message: 'must be a date YYYY-MM-DD' });
    return z.NEVER;
  }
  return value;
});

/**
 * A date-time as OpenEMR's `Y-m-d H:i:s` (server local time, no zone): accepts `YYYY-MM-DD`,
 * `YYYY-MM-DD HH:MM[:SS]`, `YYYY-MM-DDTHH:MM[:SS]` or a `Date` (its UTC time).
 */
export const dateTimeInputSchema = z.union([z.date(), z.string()]).transform((value, ctx) => {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'must be a valid date-time' });
      return z.NEVER;
    }
    return value.toISOString().slice(0, 19).replace('T', ' ');
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value);
  if (
    !m ||
    !isRealDate(Number(m[1]), Number(m[2]), Number(m[3])) ||
    Number(m[4] ?? 0) > 23 ||
    Number(m[5] ?? 0) > 59 ||
    Number(m[6] ?? 0) > 59
  ) {
    ctx.addIssue({ code: 'custom', message: 'must be a date-time YYYY-MM-DD HH:MM:SS' });
    return z.NEVER;
  }
  return `${m[1]}-${m[2]}-${m[3]} ${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}`;
});

/** A time of day as OpenEMR's appointment `HH:MM` (exactly five characters); `HH:MM:SS` is cut to `HH:MM`. */
export const timeInputSchema = z.string().transform((value, ctx) => {
  const m = /^([01]\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?$/.exec(value);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: 'must be a time HH:MM' });
    return z.NEVER;
  }
  return `${m[1]}:${m[2]}`;
});

/** A number or numeric string, sent as a string (the spec types these fields as strings). */
const numericText = z
  .union([z.number().finite(), z.string().regex(/^-?\d+(\.\d+)?$/, 'must be numeric')])
  .transform((v) => String(v));

/** A UUID string (OpenEMR's `uuid`, `puuid`, `euuid`, ...). */
export const uuidSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID');

/** A numeric OpenEMR id given by a caller (`pid`, `eid`, ...). */
export const idInputSchema = z
  .union([z.number().int().positive(), z.string().regex(/^\d+$/)])
  .transform((v) => String(v));

// ------------------------------------------------------------------ envelope

/**
 * OpenEMR's standard envelope. `validationErrors` is `[]` when empty and an object keyed by field
 * otherwise (notes §3.2; the spec says an array of objects). `links` is absent on 7.0, `[]` (PHP's empty
 * array) on every non-paginated 8.0 answer and an object of URLs on lists (recorded-8.0.0); the client
 * reads it as an object or nothing.
 */
export const envelopeSchema = z.object({
  validationErrors: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).optional(),
  internalErrors: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).optional(),
  data: z.unknown(),
  links: z
    .union([z.record(z.string(), z.string()), z.array(z.unknown())])
    .optional()
    .transform((links) => (links === undefined || Array.isArray(links) ? undefined : links)),
});
/** The standard envelope. */
export type Envelope = z.infer<typeof envelopeSchema>;

/**
 * A Particle validation error object, `{field: {"Rule::CODE": "message"}}` or `{field: "message"}`, or
 * `{field: ["message"]}` (8.0's answer to deleting an unknown problem, recorded-8.0.0 file 37).
 */
export const particleErrorsSchema = z.record(
  z.string(),
  z.union([z.string(), z.record(z.string(), z.string()), z.array(z.string())]),
);

// ------------------------------------------------------------------- patient

/** Body of `POST /api/patient` (`api_patient_request`, with OpenEMR's validator rules). */
export const patientCreateSchema = z
  .object({
    fname: z.string().min(1).max(255),
    lname: z.string().min(2, 'must be at least 2 characters').max(255),
    DOB: dateInputSchema,
    /** 4–30 characters: `Male`, `Female` or `Unknown` (`UNK` fails OpenEMR's validator). */
    sex: z.string().min(4, 'must be 4-30 characters (Male, Female, Unknown)').max(30),
    title: z.string().max(255).optional(),
    mname: z.string().max(255).optional(),
    street: z.string().max(255).optional(),
    postal_code: z.string().max(255).optional(),
    city: z.string().max(255).optional(),
    state: z.string().max(255).optional(),
    country_code: z.string().max(255).optional(),
    phone_contact: z.string().max(255).optional(),
    phone_home: z.string().max(255).optional(),
    phone_cell: z.string().max(255).optional(),
    race: z.string().max(255).optional(),
    ethnicity: z.string().max(255).optional(),
    email: z.email().optional(),
    email_direct: z.string().max(255).optional(),
    pubpid: z.string().max(255).optional(),
  })
  .strict();
/** Input of `patients.create()`. */
export type PatientCreateInput = z.input<typeof patientCreateSchema>;

/** Body of `PUT /api/patient/{puuid}`: the same fields, none required. */
export const patientUpdateSchema = patientCreateSchema.partial().strict();
/** Input of `patients.update()`. */
export type PatientUpdateInput = z.input<typeof patientUpdateSchema>;

/** A patient record (`patient_data` row). */
export const patientSchema = z.looseObject({
  id: numericIdSchema.optional(),
  pid: numericIdSchema,
  uuid: uuidSchema,
  pubpid: nullableText,
  title: nullableText,
  fname: z.string(),
  mname: nullableText,
  lname: z.string(),
  DOB: z.string().nullable(),
  sex: nullableText,
  street: nullableText,
  city: nullableText,
  state: nullableText,
  postal_code: nullableText,
  country_code: nullableText,
  phone_home: nullableText,
  phone_cell: nullableText,
  email: nullableText,
  date: nullableText,
});
/** A patient. */
export type Patient = z.infer<typeof patientSchema>;

/** Search fields of `GET /api/patient` that OpenEMR honours (others are ignored by the server). */
export const patientSearchSchema = z
  .object({
    fname: z.string().optional(),
    lname: z.string().optional(),
    street: z.string().optional(),
    city: z.string().optional(),
    state: z.string().optional(),
    postal_code: z.string().optional(),
    ss: z.string().optional(),
    phone_home: z.string().optional(),
    phone_biz: z.string().optional(),
    phone_cell: z.string().optional(),
    sex: z.string().optional(),
    country_code: z.string().optional(),
    email: z.string().optional(),
    DOB: dateInputSchema.optional(),
    /** `field,-field` */
    _sort: z
      .string()
      .regex(/^-?[A-Za-z_]+(,-?[A-Za-z_]+)*$/)
      .optional(),
  })
  .strict();
/** Search criteria for patients. */
export type PatientSearch = z.input<typeof patientSearchSchema>;

/** `data` of `POST /api/patient`. */
export const patientCreatedSchema = z.looseObject({ pid: numericIdSchema, uuid: uuidSchema });
/** Identifiers of a created patient. */
export type PatientCreated = z.infer<typeof patientCreatedSchema>;

// ----------------------------------------------------------------- encounter

const encounterFields = {
  date: dateInputSchema.optional(),
  onset_date: dateInputSchema.optional(),
  reason: z.string().max(65535).optional(),
  facility_id: idInputSchema.optional(),
  billing_facility: idInputSchema.optional(),
  sensitivity: z.enum(['normal', 'high']).optional(),
  referral_source: z.string().optional(),
  pos_code: z.string().optional(),
  external_id: z.string().optional(),
  provider_id: idInputSchema.optional(),
};

/** Body of `POST /api/patient/{puuid}/encounter` (`api_encounter_request`). */
export const encounterCreateSchema = z
  .object({
    ...encounterFields,
    /** Appointment category id, e.g. `5` (Office Visit). */
    pc_catid: idInputSchema,
    /** A code of list `_ActEncounterCode`: `AMB`, `EMER`, `IMP`, `ACUTE`, `OBSENC`, `VR`, `HH`. */
    class_code: z.string().regex(/^[A-Z]{2,10}$/, 'must be an _ActEncounterCode such as AMB'),
  })
  .strict();
/** Input of `encounters.create()`. */
export type EncounterCreateInput = z.input<typeof encounterCreateSchema>;

/** Body of `PUT /api/patient/{puuid}/encounter/{euuid}`. */
export const encounterUpdateSchema = encounterCreateSchema.partial().strict();
/** Input of `encounters.update()`. */
export type EncounterUpdateInput = z.input<typeof encounterUpdateSchema>;

/** An encounter, with both its numeric `eid` and its `euuid` (the spec's `id`/`uuid` example is stale). */
export const encounterSchema = z.looseObject({
  eid: numericIdSchema,
  euuid: uuidSchema,
  pid: numericIdSchema,
  puuid: uuidSchema.nullable().optional(),
  date: z.string().nullable(),
  reason: nullableText,
  onset_date: nullableText,
  pc_catid: z.union([z.string(), z.number()]).nullable().optional(),
  class_code: nullableText,
  facility_id: z.union([z.string(), z.number()]).nullable().optional(),
  provider_id: z.union([z.string(), z.number()]).nullable().optional(),
});
/** An encounter. */
export type Encounter = z.infer<typeof encounterSchema>;

/** 7.0's answer to an encounter create: only the numbers (recorded-7.0.1 file 18). */
export const encounterIdsSchema = z.looseObject({ encounter: numericIdSchema, uuid: uuidSchema });

// -------------------------------------------------------------------- vitals

/** Body of vitals writes. Values are in US units (lb, in, °F), as OpenEMR stores them. */
export const vitalInputSchema = z
  .object({
    bps: numericText.optional(),
    bpd: numericText.optional(),
    weight: numericText.optional(),
    height: numericText.optional(),
    temperature: numericText.optional(),
    pulse: numericText.optional(),
    respiration: numericText.optional(),
    BMI: numericText.optional(),
    waist_circ: numericText.optional(),
    head_circ: numericText.optional(),
    oxygen_saturation: numericText.optional(),
    temp_method: z.string().min(1).max(255).optional(),
    note: z.string().min(1).max(255).optional(),
    BMI_status: z.string().min(1).max(255).optional(),
  })
  .strict();
/** Input of `vitals.create()` / `vitals.update()`. */
export type VitalInput = z.input<typeof vitalInputSchema>;

/** A vitals row (`form_vitals`). */
export const vitalSchema = z.looseObject({
  id: numericIdSchema,
  uuid: z.string().nullable().optional(),
  pid: numericIdSchema,
  eid: numericIdSchema,
  date: z.string().nullable(),
  bps: nullableText,
  bpd: nullableText,
  weight: nullableText,
  height: nullableText,
  temperature: nullableText,
  pulse: nullableText,
  respiration: nullableText,
  oxygen_saturation: nullableText,
});
/** A vitals record. */
export type Vital = z.infer<typeof vitalSchema>;

/**
 * Answer of `POST …/vital`. `fid` (the `forms` row) is absent when the client had to find the stored row by
 * listing, because 8.0.0 answered 500 (recorded-8.0.0 file 26).
 */
export const vitalCreatedSchema = z.looseObject({ vid: numericIdSchema, fid: numericIdSchema.optional() });
/** Identifiers of created vitals. */
export type VitalCreated = z.infer<typeof vitalCreatedSchema>;

// ---------------------------------------------------------------- SOAP notes

/** Body of SOAP note writes: each part 2–65535 characters. */
export const soapNoteInputSchema = z
  .object({
    subjective: z.string().min(2).max(65535).optional(),
    objective: z.string().min(2).max(65535).optional(),
    assessment: z.string().min(2).max(65535).optional(),
    plan: z.string().min(2).max(65535).optional(),
  })
  .strict();
/** Input of `soapNotes.create()` / `soapNotes.update()`. */
export type SoapNoteInput = z.input<typeof soapNoteInputSchema>;

/** A SOAP note (`form_soap`). */
export const soapNoteSchema = z.looseObject({
  id: numericIdSchema,
  pid: numericIdSchema,
  eid: numericIdSchema.optional(),
  date: z.string().nullable().optional(),
  subjective: nullableText,
  objective: nullableText,
  assessment: nullableText,
  plan: nullableText,
});
/** A SOAP note. */
export type SoapNote = z.infer<typeof soapNoteSchema>;

/** Answer of `POST …/soap_note`. */
export const soapNoteCreatedSchema = z.looseObject({ sid: numericIdSchema, fid: numericIdSchema });
/** Identifiers of a created SOAP note. */
export type SoapNoteCreated = z.infer<typeof soapNoteCreatedSchema>;

// ------------------------------------------------------------ lists (issues)

/** Body of `POST /api/patient/{puuid}/medical_problem`: `title` and `begdate` required. */
export const medicalProblemCreateSchema = z
  .object({
    title: z.string().min(2).max(255),
    begdate: dateInputSchema,
    enddate: dateInputSchema.nullable().optional(),
    /** `<codetype>:<code>`, e.g. `ICD10:C71.1`. */
    diagnosis: z.string().min(2).max(255).optional(),
    comments: z.string().optional(),
  })
  .strict();
/** Input of `medicalProblems.create()`. */
export type MedicalProblemCreateInput = z.input<typeof medicalProblemCreateSchema>;
/** Body of `PUT …/medical_problem/{muuid}`. */
export const medicalProblemUpdateSchema = medicalProblemCreateSchema.partial().strict();
/** Input of `medicalProblems.update()`. */
export type MedicalProblemUpdateInput = z.input<typeof medicalProblemUpdateSchema>;

/** Body of `POST /api/patient/{puuid}/allergy`: `title` required. */
export const allergyCreateSchema = z
  .object({
    title: z.string().min(2).max(255),
    begdate: dateInputSchema.optional(),
    enddate: dateInputSchema.nullable().optional(),
    diagnosis: z.string().min(2).max(255).optional(),
    comments: z.string().optional(),
    reaction: z.string().max(255).optional(),
    severity_al: z.string().max(255).optional(),
    verification: z.string().max(255).optional(),
  })
  .strict();
/** Input of `allergies.create()`. */
export type AllergyCreateInput = z.input<typeof allergyCreateSchema>;
/** Body of `PUT …/allergy/{auuid}`. */
export const allergyUpdateSchema = allergyCreateSchema.partial().strict();
/** Input of `allergies.update()`. */
export type AllergyUpdateInput = z.input<typeof allergyUpdateSchema>;

/**
 * A `diagnosis` as OpenEMR stores and accepts it (`ICD10:C71.2`, several joined with `;`). Reads answer it
 * as an object keyed by code (`{"C71.2": {code, code_type, system, description}}`, recorded on 7.0.1 and
 * 8.0.0): turned back into the stored form so it can be written again as read.
 */
const diagnosisSchema = z
  .union([
    z.string(),
    z.record(z.string(), z.looseObject({ code: z.union([z.string(), z.number()]), code_type: z.string().nullish() })),
  ])
  .nullable()
  .optional()
  .transform((d) =>
    d === null || d === undefined || typeof d === 'string'
      ? d
      : Object.values(d)
          .map((c) => (c.code_type ? `${c.code_type}:${String(c.code)}` : String(c.code)))
          .join(';'),
  );

/** A `lists` row: a medical problem, allergy or medication. */
export const listItemSchema = z.looseObject({
  id: numericIdSchema,
  uuid: uuidSchema.nullable().optional(),
  pid: numericIdSchema.optional(),
  puuid: uuidSchema.nullable().optional(),
  type: nullableText,
  title: z.string(),
  begdate: nullableText,
  enddate: nullableText,
  diagnosis: diagnosisSchema,
  comments: nullableText,
});
/** A medical problem. */
export type MedicalProblem = z.infer<typeof listItemSchema>;
/** An allergy. */
export type Allergy = z.infer<typeof listItemSchema>;
/** A medication-list entry. */
export type Medication = z.infer<typeof listItemSchema>;

/** `data` of a created problem or allergy. */
export const issueCreatedSchema = z.looseObject({ id: numericIdSchema, uuid: uuidSchema });
/** Identifiers of a created problem or allergy. */
export type IssueCreated = z.infer<typeof issueCreatedSchema>;

/** Body of medication-list writes: dates are `Y-m-d H:i:s` on this route (notes §3.4). */
export const medicationCreateSchema = z
  .object({
    title: z.string().min(2).max(255),
    begdate: dateTimeInputSchema,
    enddate: dateTimeInputSchema.nullable().optional(),
    diagnosis: z.string().min(2).max(255).optional(),
    comments: z.string().optional(),
  })
  .strict();
/** Input of `medications.create()`. */
export type MedicationCreateInput = z.input<typeof medicationCreateSchema>;
/** Body of `PUT /api/patient/{pid}/medication/{mid}`. */
export const medicationUpdateSchema = medicationCreateSchema.partial().strict();
/** Input of `medications.update()`. */
export type MedicationUpdateInput = z.input<typeof medicationUpdateSchema>;
/** Answer of medication create/update, `{id}`. */
export const medicationWrittenSchema = z.looseObject({ id: numericIdSchema });

// -------------------------------------------------------------- prescription

/** Body of `POST /api/prescription` (8.x only). */
export const prescriptionCreateSchema = z
  .object({
    /** The patient's numeric pid (the route calls it `patient_id`; the spec types it as an integer). */
    patient_id: idInputSchema.transform(Number),
    drug: z.string().min(1).max(150),
    rxnorm_drugcode: z.string().max(25).optional(),
    dosage: z.string().min(1).max(100).optional(),
    quantity: z.string().min(1).max(31).optional(),
    route: z.string().max(100).optional(),
    unit: z.string().max(50).optional(),
    interval: z.string().max(100).optional(),
    refills: numericText.optional(),
    note: z.string().optional(),
    start_date: dateInputSchema.optional(),
    provider_id: idInputSchema.transform(Number).optional(),
    encounter: idInputSchema.optional(),
  })
  .strict();
/** Input of `prescriptions.create()`. */
export type PrescriptionCreateInput = z.input<typeof prescriptionCreateSchema>;

/**
 * A prescription. The list also holds the medication list's entries, with `uuid: null` and
 * `source_table: "lists"` (recorded-8.0.0 file 46).
 */
export const prescriptionSchema = z.looseObject({
  id: numericIdSchema.optional(),
  uuid: uuidSchema.nullable(),
  puuid: uuidSchema.nullable().optional(),
  drug: z.string().nullable(),
  rxnorm_drugcode: nullableText,
  dosage: nullableText,
  quantity: nullableText,
  start_date: nullableText,
});
/** A prescription. */
export type Prescription = z.infer<typeof prescriptionSchema>;

// ----------------------------------------------------------------- procedure

/** A procedure order. */
export const procedureSchema = z.looseObject({
  uuid: uuidSchema,
  puuid: uuidSchema.nullable().optional(),
  procedure_code: nullableText,
  procedure_name: nullableText,
  date_ordered: nullableText,
});
/** A procedure order. */
export type Procedure = z.infer<typeof procedureSchema>;

// --------------------------------------------------------------- appointment

/** Body of `POST /api/patient/{pid}/appointment`: all fields but `pc_aid` required. */
export const appointmentCreateSchema = z
  .object({
    pc_catid: idInputSchema,
    pc_title: z.string().min(2).max(150),
    /** Duration in seconds. */
    pc_duration: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).transform(String),
    pc_hometext: z.string().default(''),
    /** From list `apptstat`, e.g. `-` (none), `@` (arrived). */
    pc_apptstatus: z.string().min(1).max(10),
    pc_eventDate: dateInputSchema,
    pc_startTime: timeInputSchema,
    pc_facility: idInputSchema,
    pc_billing_location: idInputSchema,
    pc_aid: idInputSchema.optional(),
  })
  .strict();
/** Input of `appointments.create()`. */
export type AppointmentCreateInput = z.input<typeof appointmentCreateSchema>;

/** An appointment. */
export const appointmentSchema = z.looseObject({
  pc_eid: numericIdSchema,
  pc_uuid: z.string().nullable().optional(),
  pid: numericIdSchema,
  puuid: uuidSchema.nullable().optional(),
  pc_title: nullableText,
  pc_eventDate: nullableText,
  pc_startTime: nullableText,
  pc_duration: z.union([z.string(), z.number()]).nullable().optional(),
  pc_apptstatus: nullableText,
});
/** An appointment. */
export type Appointment = z.infer<typeof appointmentSchema>;

// -------------------------------------------------------------- practitioner

/** Body of `POST /api/practitioner`. */
export const practitionerCreateSchema = z
  .object({
    fname: z.string().min(2).max(255),
    lname: z.string().min(2).max(255),
    /** National Provider Identifier: 10–15 digits. */
    npi: z.string().regex(/^\d{10,15}$/, 'must be 10-15 digits'),
    title: z.string().max(255).optional(),
    mname: z.string().max(255).optional(),
    email: z.email().optional(),
    specialty: z.string().max(255).optional(),
    facility_id: idInputSchema.optional(),
    federaltaxid: z.string().max(255).optional(),
    federaldrugid: z.string().max(255).optional(),
    upin: z.string().max(255).optional(),
  })
  .strict();
/** Input of `practitioners.create()`. */
export type PractitionerCreateInput = z.input<typeof practitionerCreateSchema>;
/** Body of `PUT /api/practitioner/{pruuid}`. */
export const practitionerUpdateSchema = practitionerCreateSchema.partial().strict();
/** Input of `practitioners.update()`. */
export type PractitionerUpdateInput = z.input<typeof practitionerUpdateSchema>;

/** A practitioner (`users` row). */
export const practitionerSchema = z.looseObject({
  id: numericIdSchema,
  uuid: uuidSchema,
  fname: nullableText,
  lname: nullableText,
  npi: nullableText,
  specialty: nullableText,
  email: nullableText,
});
/** A practitioner. */
export type Practitioner = z.infer<typeof practitionerSchema>;

// ----------------------------------------------------------------- documents

/** File types OpenEMR accepts as documents (its `files_white_list`; anything else answers 404, file 62). */
export const DOCUMENT_CONTENT_TYPES = [
  'application/pdf',
  'image/gif',
  'image/jpeg',
  'image/png',
  'text/plain',
  'application/zip',
  'application/dicom',
  'application/dicom+zip',
] as const;

/**
 * A document category path segment: letters, digits, `_` (a space is sent as `_`: OpenEMR matches the
 * segment without `_` against the category name without spaces, case-insensitively, recorded-8.0.0 file 61).
 */
export const documentCategorySchema = z
  .string()
  .transform((c) => c.trim().replace(/\s+/g, '_'))
  .pipe(z.string().regex(/^[A-Za-z0-9_]{1,100}$/, 'must be a category name such as Lab_Report'));

/** Input of `documents.upload()`. */
export const documentUploadSchema = z
  .object({
    /** The patient's numeric pid. */
    pid: idInputSchema,
    /** The file's bytes (not empty). */
    content: z
      .custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes (a Buffer or Uint8Array)')
      .refine((b) => b.byteLength > 0, 'must not be empty'),
    /** The name shown in the chart, e.g. `mri-report-2025-11-20.pdf`. */
    filename: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[^/\\"\r\n]+$/, 'must be a plain file name'),
    contentType: z.enum(DOCUMENT_CONTENT_TYPES),
    /** The category; default the client option `documentCategory`. */
    category: documentCategorySchema.optional(),
  })
  .strict();
/** Input of `documents.upload()`. */
export type DocumentUploadInput = z.input<typeof documentUploadSchema>;

/** A row of `GET /api/patient/{pid}/document?path=…` (a bare array, recorded-8.0.0 file 63). */
export const documentSchema = z.looseObject({
  id: numericIdSchema,
  filename: z.string(),
  mimetype: z.string().nullable().optional(),
  docdate: z.string().nullable().optional(),
  /** SHA3-512 of the content, hex. */
  hash: z.string().nullable().optional(),
});
/** A stored document, as the category listing shows it. */
export type DocumentInfo = z.infer<typeof documentSchema>;

// --------------------------------------------------------------------- OAuth

/** A token endpoint answer. */
export const tokenResponseSchema = z.looseObject({
  token_type: z.string().regex(/^bearer$/i),
  access_token: z.string().min(1),
  expires_in: z.number().int().positive(),
  refresh_token: z.string().min(1).optional(),
  id_token: z.string().optional(),
  scope: z.string().optional(),
  patient: z.string().optional(),
  encounter: z.string().optional(),
  need_patient_banner: z.boolean().optional(),
  smart_style_url: z.string().optional(),
  intent: z.string().optional(),
});

/** Tokens from the token endpoint, normalised. Never log them. */
export interface TokenSet {
  /** The bearer token. */
  accessToken: string;
  /** Expiry in epoch milliseconds (from `expires_in` and the client's clock). */
  expiresAt: number;
  /** Present only when `offline_access` was granted; rotated on every refresh. */
  refreshToken?: string | undefined;
  /** OIDC id token, when `openid` was granted. */
  idToken?: string | undefined;
  /** The scopes actually granted (unregistered scopes are silently dropped by OpenEMR). */
  scopes: string[];
  /** SMART launch context: the patient's uuid. */
  patient?: string | undefined;
  /** SMART launch context: the encounter's uuid. */
  encounter?: string | undefined;
  /** SMART launch context: whether the app must show the patient banner. */
  needPatientBanner?: boolean | undefined;
  /** SMART launch context: the EHR's style sheet. */
  smartStyleUrl?: string | undefined;
  /** SMART launch context: the launch intent (e.g. `patient.demographics.dialog`). */
  intent?: string | undefined;
}

/** RFC 7591 dynamic client registration request, with OpenEMR's extensions. */
export const clientRegistrationSchema = z
  .object({
    redirect_uris: z.array(z.url()).min(1),
    /** `private` = confidential client (gets a secret); anything else is public. */
    application_type: z.enum(['private', 'public']).default('private'),
    client_name: z.string().min(1).max(255),
    contacts: z.array(z.email()).optional(),
    post_logout_redirect_uris: z.array(z.url()).optional(),
    token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt']).optional(),
    jwks_uri: z.url().optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    /** Space-separated scopes. */
    scope: z.string().min(1),
    grant_types: z.array(z.string()).optional(),
    response_types: z.array(z.string()).optional(),
    initiate_login_uri: z.url().optional(),
    logo_uri: z.url().optional(),
    policy_uri: z.url().optional(),
    tos_uri: z.url().optional(),
    /** ONC HTI-1 decision support intervention type; a CDSS is `predictive` or `evidence`. */
    dsi_type: z.enum(['none', 'evidence', 'predictive']).optional(),
  })
  .strict();
/** Input of `registerClient()`. */
export type ClientRegistrationInput = z.input<typeof clientRegistrationSchema>;

/** Registration answer. */
export const clientRegistrationResponseSchema = z.looseObject({
  client_id: z.string().min(1),
  client_secret: z.string().optional(),
  registration_access_token: z.string().optional(),
  registration_client_uri: z.string().optional(),
  client_id_issued_at: z.number().optional(),
  client_name: z.string().optional(),
  redirect_uris: z.array(z.string()).optional(),
  scope: z.string().optional(),
});
/** A registered client. */
export type ClientRegistration = z.infer<typeof clientRegistrationResponseSchema>;

/** `/.well-known/openid-configuration`. */
export const discoverySchema = z.looseObject({
  issuer: z.string(),
  authorization_endpoint: z.string(),
  token_endpoint: z.string(),
  jwks_uri: z.string().optional(),
  registration_endpoint: z.string().optional(),
  introspection_endpoint: z.string().optional(),
  end_session_endpoint: z.string().optional(),
  grant_types_supported: z.array(z.string()).optional(),
  scopes_supported: z.array(z.string()).optional(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
});
/** OIDC discovery document. */
export type DiscoveryDocument = z.infer<typeof discoverySchema>;

/** `/fhir/.well-known/smart-configuration`. */
export const smartConfigurationSchema = z.looseObject({
  issuer: z.string().optional(),
  authorization_endpoint: z.string(),
  token_endpoint: z.string(),
  grant_types_supported: z.array(z.string()).optional(),
  capabilities: z.array(z.string()).optional(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
});
/** SMART configuration. */
export type SmartConfiguration = z.infer<typeof smartConfigurationSchema>;

/**
 * An expiry in epoch seconds. 7.0.1 serialises a PHP `DateTime` instead (`{date, timezone_type, timezone}`,
 * recorded-7.0.1 file 08): read as the same epoch seconds.
 */
const epochSecondsSchema = z.union([
  z.number(),
  z.looseObject({ date: z.string(), timezone: z.string() }).transform((d, ctx) => {
    const zone = /^[+-]\d{2}:\d{2}$/.test(d.timezone) ? d.timezone : d.timezone === 'UTC' ? 'Z' : undefined;
    const ms = Date.parse(`${d.date.replace(' ', 'T')}${zone ?? ''}`);
    if (zone === undefined || Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'unreadable PHP DateTime' });
      return z.NEVER;
    }
    return Math.floor(ms / 1000);
  }),
]);

/** RFC 7662 introspection answer. */
export const introspectionSchema = z.looseObject({
  active: z.boolean(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  exp: epochSecondsSchema.optional(),
  sub: z.string().optional(),
});
/** Introspection result. */
export type Introspection = z.infer<typeof introspectionSchema>;

// ---------------------------------------------------------------------- FHIR

/** The loose shape every FHIR resource answer is checked against before it is typed. */
export const fhirResourceSchema = z.looseObject({ resourceType: z.string(), id: z.string().optional() });

/** A FHIR search Bundle as OpenEMR returns it (`type: collection`, `total` = entries in this page). */
export const fhirBundleSchema = z.looseObject({
  resourceType: z.literal('Bundle'),
  type: z.string(),
  total: z.number().int().nonnegative().optional(),
  link: z.array(z.looseObject({ relation: z.string(), url: z.string() })).optional(),
  entry: z.array(z.looseObject({ fullUrl: z.string().optional(), resource: fhirResourceSchema })).optional(),
});

/** Answer of `POST /fhir/Patient` (`{pid, uuid}`), `/fhir/Practitioner` and `/fhir/Organization` (`{id, uuid}`). */
export const fhirCreatedSchema = z.looseObject({
  uuid: uuidSchema,
  pid: numericIdSchema.optional(),
  id: numericIdSchema.optional(),
});
