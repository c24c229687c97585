/**
 * OpenEMR standard-API records -> FHIR R4 resources (and Patient back to OpenEMR). Pure functions:
 * no I/O, no clock; invalid input throws `ValidationError` (`@cdss/core`) before anything is built.
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';
import type {
  AllergyIntolerance,
  CodeableConcept,
  Coding,
  Condition,
  ContactPoint,
  Encounter,
  Extension,
  MedicationRequest,
  Patient,
  Reference,
} from 'fhir/r4.js';
import { CODES, coding, concept, findCode, type CodeName } from './codes.js';
import { mapperContext, patientLogicalReference, type MapperContext, type MapperOptions } from './context.js';
import {
  openEmrAllergySchema,
  openEmrEncounterSchema,
  openEmrMedicationSchema,
  openEmrPatientSchema,
  openEmrPrescriptionSchema,
  openEmrProblemSchema,
  type OpenEmrPatientWrite,
} from './openemr-schemas.js';
import { CODE_SYSTEMS, EXTENSIONS, PROFILES } from './systems.js';
import { compact, parseInput, toFhirDate, toFhirDateTime } from './util.js';

/** Options of the clinical mappers: the common options plus the patient reference to use. */
export interface ClinicalMapperOptions extends MapperOptions {
  /**
   * The subject. Default: a logical reference by the record's OpenEMR patient uuid (`puuid`). Pass
   * `{reference: 'Patient/<id>'}` once the patient exists on the FHIR server.
   */
  subject?: Reference;
}

function subjectFor(
  ctx: MapperContext,
  puuid: string | undefined,
  options: ClinicalMapperOptions,
  what: string,
): Reference {
  if (options.subject) return options.subject;
  if (puuid) return patientLogicalReference(ctx, puuid);
  throw new ValidationError(`Invalid ${what}`, [
    { path: 'puuid', message: 'The record has no puuid and no subject option was given', code: 'missing_subject' },
  ]);
}

// ------------------------------------------------------------------------------------------ Patient

/** OpenEMR `sex` -> FHIR gender, as OpenEMR's FhirPatientService maps it (unknown values -> other). */
function genderOf(sex: string | undefined): Patient['gender'] {
  const s = (sex ?? '').trim().toLowerCase();
  if (s === 'male') return 'male';
  if (s === 'female') return 'female';
  // OpenEMR maps an empty sex to "Unknown" and then (bug openemr#9619) to "other"; we keep "unknown".
  if (s === '' || s === 'unk' || s === 'unknown') return 'unknown';
  return 'other';
}

function birthSexOf(sex: string | undefined): string {
  const s = (sex ?? '').trim().toLowerCase();
  return s === 'male' ? 'M' : s === 'female' ? 'F' : 'UNK';
}

/**
 * OpenEMR patient -> FHIR Patient, with identifiers for OpenEMR's uuid, pid and MRN (pubpid).
 * @param input - the patient row (OpenEMR field names)
 * @param options - site and clock offset
 * @returns the Patient (no id: the FHIR server assigns it; match on the uuid identifier)
 * @throws `ValidationError` (`@cdss/core`) when the row is not a valid OpenEMR patient
 */
export function patientToFhir(input: unknown, options: MapperOptions = {}): Patient {
  const ctx = mapperContext(options);
  const p = parseInput(openEmrPatientSchema, input, 'OpenEMR patient');
  const identifier: NonNullable<Patient['identifier']> = [
    { use: 'official', system: ctx.systems.patientUuid, value: p.uuid },
    { use: 'secondary', system: ctx.systems.patientPid, value: p.pid },
  ];
  if (p.pubpid)
    identifier.push({ use: 'usual', type: concept('mrn'), system: ctx.systems.patientMrn, value: p.pubpid });
  const telecom: ContactPoint[] = [];
  if (p.phone_home) telecom.push({ system: 'phone', value: p.phone_home, use: 'home' });
  if (p.phone_cell) telecom.push({ system: 'phone', value: p.phone_cell, use: 'mobile' });
  if (p.phone_biz) telecom.push({ system: 'phone', value: p.phone_biz, use: 'work' });
  if (p.phone_contact) telecom.push({ system: 'phone', value: p.phone_contact, use: 'temp' });
  if (p.email) telecom.push({ system: 'email', value: p.email });
  const extension: Extension[] = p.sex ? [{ url: EXTENSIONS.usCoreBirthSex, valueCode: birthSexOf(p.sex) }] : [];
  const address = compact({
    use: 'home' as const,
    line: p.street ? [p.street] : undefined,
    city: p.city,
    state: p.state,
    postalCode: p.postal_code,
    country: p.country_code,
  });
  const patient: Patient = compact({
    resourceType: 'Patient' as const,
    extension,
    identifier,
    active: true,
    name: [
      compact({
        use: 'official' as const,
        family: p.lname,
        given: [p.fname, ...(p.mname ? [p.mname] : [])],
        prefix: p.title ? [p.title] : undefined,
        suffix: p.suffix ? [p.suffix] : undefined,
      }),
    ],
    telecom,
    gender: genderOf(p.sex),
    birthDate: p.DOB,
    deceasedDateTime: p.deceased_date ? toFhirDateTime(p.deceased_date, ctx.utcOffset) : undefined,
    address: Object.keys(address).length > 1 ? [address] : undefined,
  });
  return patient;
}

/**
 * FHIR Patient -> the OpenEMR fields to write (`POST`/`PUT /api/patient`), the inverse of
 * {@link patientToFhir} for the fields OpenEMR stores.
 * @param patient - a FHIR R4 Patient with an official (or first) name that has a family and a given name
 * @param options - site (to recognise the identifier systems)
 * @throws `ValidationError` (`@cdss/core`) when the Patient lacks a family or given name
 */
export function patientFromFhir(patient: Patient, options: MapperOptions = {}): OpenEmrPatientWrite {
  const ctx = mapperContext(options);
  if (patient?.resourceType !== 'Patient') {
    throw new ValidationError('Invalid FHIR Patient', [
      { path: 'resourceType', message: 'Expected "Patient"', code: 'invalid_value' },
    ]);
  }
  const name = patient.name?.find((n) => n.use === 'official') ?? patient.name?.[0];
  const issues = [];
  if (!name?.family) issues.push({ path: 'name.0.family', message: 'A family name is required', code: 'required' });
  if (!name?.given?.[0]) issues.push({ path: 'name.0.given.0', message: 'A given name is required', code: 'required' });
  if (issues.length > 0 || !name?.family || !name.given?.[0]) throw new ValidationError('Invalid FHIR Patient', issues);
  const phone = (use: ContactPoint['use']): string | undefined =>
    patient.telecom?.find((t) => t.system === 'phone' && t.use === use)?.value;
  const id = (system: string): string | undefined => patient.identifier?.find((i) => i.system === system)?.value;
  const address = patient.address?.find((a) => a.use === 'home') ?? patient.address?.[0];
  const sex =
    patient.gender === 'male'
      ? 'Male'
      : patient.gender === 'female'
        ? 'Female'
        : patient.gender
          ? 'Unknown'
          : undefined;
  return compact({
    fname: name.given[0],
    mname: name.given.slice(1).join(' ') || undefined,
    lname: name.family,
    title: name.prefix?.[0],
    suffix: name.suffix?.[0],
    DOB: patient.birthDate?.length === 10 ? patient.birthDate : undefined,
    sex,
    street: address?.line?.join(', '),
    city: address?.city,
    state: address?.state,
    postal_code: address?.postalCode,
    country_code: address?.country,
    phone_home: phone('home'),
    phone_cell: phone('mobile'),
    phone_biz: phone('work'),
    email: patient.telecom?.find((t) => t.system === 'email')?.value,
    uuid: id(ctx.systems.patientUuid),
    pid: id(ctx.systems.patientPid),
    pubpid: id(ctx.systems.patientMrn),
  }) as OpenEmrPatientWrite;
}

// ---------------------------------------------------------------------------------------- Encounter

const ENCOUNTER_CLASSES: Record<string, CodeName> = {
  AMB: 'encounterAmbulatory',
  EMER: 'encounterEmergency',
  IMP: 'encounterInpatient',
  ACUTE: 'encounterInpatientAcute',
  NONAC: 'encounterInpatientNonAcute',
  OBSENC: 'encounterObservation',
  PRENC: 'encounterPreAdmission',
  SS: 'encounterShortStay',
  VR: 'encounterVirtual',
  HH: 'encounterHomeHealth',
  FLD: 'encounterField',
};

/**
 * OpenEMR encounter -> FHIR Encounter (status `finished`: OpenEMR records encounters that took place,
 * as its own FHIR API does; class from `class_code`, the v3 ActCode list `_ActEncounterCode`).
 * @throws `ValidationError` (`@cdss/core`) on an invalid row or an unknown `class_code`
 */
export function encounterToFhir(input: unknown, options: ClinicalMapperOptions = {}): Encounter {
  const ctx = mapperContext(options);
  const e = parseInput(openEmrEncounterSchema, input, 'OpenEMR encounter');
  const classCode = (e.class_code ?? 'AMB').toUpperCase();
  const className = ENCOUNTER_CLASSES[classCode];
  if (!className) {
    throw new ValidationError('Invalid OpenEMR encounter', [
      { path: 'class_code', message: 'Not a code of the _ActEncounterCode list', code: 'invalid_value' },
    ]);
  }
  return compact({
    resourceType: 'Encounter' as const,
    identifier: [{ system: ctx.systems.encounterUuid, value: e.euuid }],
    status: 'finished' as const,
    class: coding(className),
    type: e.pc_catname ? [{ text: e.pc_catname }] : undefined,
    subject: subjectFor(ctx, e.puuid, options, 'OpenEMR encounter'),
    period: { start: toFhirDateTime(e.date, ctx.utcOffset) },
    reasonCode: e.reason ? [{ text: e.reason }] : undefined,
    serviceProvider: e.facility_name ? { display: e.facility_name } : undefined,
    hospitalization: e.discharge_disposition ? { dischargeDisposition: { text: e.discharge_disposition } } : undefined,
  });
}

// ------------------------------------------------------------------------ Codes in OpenEMR lists

/** OpenEMR code-type prefixes -> FHIR code systems. */
const CODE_TYPES: Record<string, string> = {
  ICD10: CODE_SYSTEMS.icd10cm,
  'ICD10-CM': CODE_SYSTEMS.icd10cm,
  'SNOMED-CT': CODE_SYSTEMS.snomed,
  SNOMED: CODE_SYSTEMS.snomed,
  RXNORM: CODE_SYSTEMS.rxnorm,
  RXCUI: CODE_SYSTEMS.rxnorm,
};

/**
 * Parses OpenEMR's `diagnosis` column (`ICD10:C71.9;SNOMED-CT:393563007`) into codings, with the
 * display from the code table when the code is in it. Unknown code types are left out.
 */
export function parseOpenEmrCodes(value: string | undefined): Coding[] {
  if (!value) return [];
  const out: Coding[] = [];
  for (const part of value.split(/[;,]/)) {
    const m = /^\s*([A-Za-z0-9-]+)\s*:\s*([^\s]+)\s*$/.exec(part);
    if (!m) continue;
    const system = CODE_TYPES[(m[1] as string).toUpperCase()];
    if (!system) continue;
    const code = m[2] as string;
    if (out.some((c) => c.system === system && c.code === code)) continue;
    const known = findCode(system, code);
    out.push(known ? { system, code, display: known.display } : { system, code });
  }
  return out;
}

function addCoding(list: Coding[], name: CodeName): void {
  const entry = CODES[name];
  if (!list.some((c) => c.system === entry.system && c.code === entry.code)) list.push(coding(name));
}

/** How a problem relates to brain tumours. */
export type BrainTumorKind = 'primary-malignant' | 'secondary-malignant' | 'other-neoplasm' | 'none';

/**
 * Classifies a problem: primary malignant brain neoplasm (ICD-10 C71.x, glioblastoma, glioma...),
 * brain metastasis (C79.31), other brain neoplasm (D33/D43, "brain tumour"), or none.
 * @param codings - the problem's codings
 * @param title - the problem's title (used when it has no brain code)
 */
export function classifyBrainTumor(codings: readonly Coding[], title: string): BrainTumorKind {
  const icd = codings.filter((c) => c.system === CODE_SYSTEMS.icd10cm).map((c) => (c.code ?? '').toUpperCase());
  const sct = codings.filter((c) => c.system === CODE_SYSTEMS.snomed).map((c) => c.code);
  if (
    icd.some((c) => c.startsWith('C71')) ||
    sct.includes(CODES.malignantNeoplasmOfBrain.code) ||
    sct.includes(CODES.glioblastoma.code)
  )
    return 'primary-malignant';
  if (icd.some((c) => c.startsWith('C79.3')) || sct.includes(CODES.secondaryMalignantNeoplasmOfBrain.code))
    return 'secondary-malignant';
  if (icd.some((c) => c.startsWith('D33') || c.startsWith('D43')) || sct.includes(CODES.neoplasmOfBrain.code))
    return 'other-neoplasm';
  if (codings.length > 0 && icd.length + sct.length > 0) return 'none';
  const t = title.toLowerCase();
  if (/\b(brain|cerebral|cerebellar)\s+metastas[ie]s\b/.test(t)) return 'secondary-malignant';
  if (/glioblastoma|\bgbm\b|glioma|astrocytoma|oligodendroglioma|ependymoma|medulloblastoma/.test(t))
    return 'primary-malignant';
  if (/\b(brain|intracranial)\s+(tumou?r|neoplasm|mass|lesion)\b/.test(t)) return 'other-neoplasm';
  return 'none';
}

// ---------------------------------------------------------------------------------------- Condition

const VERIFICATION: Record<string, CodeName> = {
  confirmed: 'conditionConfirmed',
  unconfirmed: 'conditionUnconfirmed',
  provisional: 'conditionProvisional',
  differential: 'conditionDifferential',
  refuted: 'conditionRefuted',
  'entered-in-error': 'conditionEnteredInError',
};

/**
 * OpenEMR medical problem -> FHIR Condition. A primary malignant brain neoplasm becomes an mCODE
 * PrimaryCancerCondition (profile, SNOMED code, brain body site); brain tumours get SNOMED codes
 * beside OpenEMR's ICD-10 codes.
 * @param input - the `lists` row (medical_problem)
 * @param options - site, clock offset, subject (any end date makes the problem resolved)
 * @throws `ValidationError` (`@cdss/core`) when the row is invalid
 */
export function problemToCondition(input: unknown, options: ClinicalMapperOptions = {}): Condition {
  const ctx = mapperContext(options);
  const p = parseInput(openEmrProblemSchema, input, 'OpenEMR medical problem');
  const codings = parseOpenEmrCodes(p.diagnosis);
  const kind = classifyBrainTumor(codings, p.title);
  const lowerTitle = p.title.toLowerCase();
  if (kind === 'primary-malignant') {
    if (/glioblastoma|\bgbm\b/.test(lowerTitle)) addCoding(codings, 'glioblastoma');
    addCoding(codings, 'malignantNeoplasmOfBrain');
  } else if (kind === 'secondary-malignant') addCoding(codings, 'secondaryMalignantNeoplasmOfBrain');
  else if (kind === 'other-neoplasm') addCoding(codings, 'neoplasmOfBrain');
  const verification = VERIFICATION[(p.verification ?? '').toLowerCase()];
  const enteredInError = verification === 'conditionEnteredInError';
  // OpenEMR: an end date (or outcome "resolved") closes the problem; activity 0 deactivates it.
  const clinical: CodeName =
    p.enddate !== undefined || /resolved/i.test(p.outcome ?? '')
      ? 'conditionResolved'
      : p.activity === '0'
        ? 'conditionInactive'
        : 'conditionActive';
  const code: CodeableConcept = compact({ coding: codings, text: p.title });
  return compact({
    resourceType: 'Condition' as const,
    meta: kind === 'primary-malignant' ? { profile: [PROFILES.primaryCancerCondition] } : undefined,
    identifier: [{ system: ctx.systems.listUuid, value: p.uuid }],
    // con-5: no clinicalStatus on an entered-in-error condition
    clinicalStatus: enteredInError ? undefined : concept(clinical),
    verificationStatus: verification ? concept(verification) : undefined,
    category: [concept('problemListItem')],
    code,
    bodySite: kind === 'none' ? undefined : [concept('brainStructure')],
    subject: subjectFor(ctx, p.puuid, options, 'OpenEMR medical problem'),
    onsetDateTime: p.begdate ? toFhirDateTime(p.begdate, ctx.utcOffset) : undefined,
    abatementDateTime: p.enddate ? toFhirDateTime(p.enddate, ctx.utcOffset) : undefined,
    note: p.comments ? [{ text: p.comments }] : undefined,
  });
}

// -------------------------------------------------------------------------------------- Allergy

const ALLERGY_VERIFICATION: Record<string, CodeName> = {
  confirmed: 'allergyConfirmed',
  unconfirmed: 'allergyUnconfirmed',
  refuted: 'allergyRefuted',
};

const SEVERITY: Record<string, { severity: 'mild' | 'moderate' | 'severe'; criticality: 'low' | 'high' }> = {
  mild: { severity: 'mild', criticality: 'low' },
  mild_to_moderate: { severity: 'moderate', criticality: 'low' },
  moderate: { severity: 'moderate', criticality: 'low' },
  moderate_to_severe: { severity: 'severe', criticality: 'high' },
  severe: { severity: 'severe', criticality: 'high' },
  life_threatening_severity: { severity: 'severe', criticality: 'high' },
  fatal: { severity: 'severe', criticality: 'high' },
};

/**
 * OpenEMR allergy -> FHIR AllergyIntolerance (reaction and severity from `reaction` and
 * `severity_al`).
 * @throws `ValidationError` (`@cdss/core`) when the row is invalid
 */
export function allergyToFhir(input: unknown, options: ClinicalMapperOptions = {}): AllergyIntolerance {
  const ctx = mapperContext(options);
  const a = parseInput(openEmrAllergySchema, input, 'OpenEMR allergy');
  const sev = SEVERITY[(a.severity_al ?? '').toLowerCase()];
  const verification = ALLERGY_VERIFICATION[(a.verification ?? '').toLowerCase()];
  const clinical: CodeName =
    a.enddate !== undefined ? 'allergyResolved' : a.activity === '0' ? 'allergyInactive' : 'allergyActive';
  return compact({
    resourceType: 'AllergyIntolerance' as const,
    identifier: [{ system: ctx.systems.listUuid, value: a.uuid }],
    clinicalStatus: concept(clinical),
    verificationStatus: verification ? concept(verification) : undefined,
    criticality: sev?.criticality,
    code: compact({ coding: parseOpenEmrCodes(a.diagnosis), text: a.title }),
    patient: subjectFor(ctx, a.puuid, options, 'OpenEMR allergy'),
    onsetDateTime: a.begdate ? toFhirDateTime(a.begdate, ctx.utcOffset) : undefined,
    lastOccurrence: a.enddate ? toFhirDateTime(a.enddate, ctx.utcOffset) : undefined,
    note: a.comments ? [{ text: a.comments }] : undefined,
    reaction: a.reaction ? [compact({ manifestation: [{ text: a.reaction }], severity: sev?.severity })] : undefined,
  });
}

// ------------------------------------------------------------------------------ MedicationRequest

/**
 * OpenEMR medication-list entry -> FHIR MedicationRequest (intent `plan`: a medication the patient
 * takes, not an order; as OpenEMR's FHIR API maps the list).
 * @throws `ValidationError` (`@cdss/core`) when the row is invalid
 */
export function medicationToFhir(input: unknown, options: ClinicalMapperOptions = {}): MedicationRequest {
  const ctx = mapperContext(options);
  const m = parseInput(openEmrMedicationSchema, input, 'OpenEMR medication');
  const status: MedicationRequest['status'] =
    m.enddate !== undefined ? 'completed' : m.activity === '0' ? 'stopped' : 'active';
  return compact({
    resourceType: 'MedicationRequest' as const,
    identifier: [{ system: ctx.systems.medicationListId, value: m.id }],
    status,
    intent: 'plan' as const,
    medicationCodeableConcept: compact({
      coding: parseOpenEmrCodes(m.diagnosis).filter((c) => c.system === CODE_SYSTEMS.rxnorm),
      text: m.title,
    }),
    subject: subjectFor(ctx, m.puuid, options, 'OpenEMR medication'),
    authoredOn: m.begdate ? toFhirDateTime(m.begdate, ctx.utcOffset) : undefined,
    dispenseRequest:
      m.begdate || m.enddate
        ? {
            validityPeriod: compact({
              start: m.begdate ? toFhirDateTime(m.begdate, ctx.utcOffset) : undefined,
              end: m.enddate ? toFhirDateTime(m.enddate, ctx.utcOffset) : undefined,
            }),
          }
        : undefined,
    note: m.comments ? [{ text: m.comments }] : undefined,
  });
}

/**
 * OpenEMR prescription -> FHIR MedicationRequest (intent `order`; RxNorm code when
 * `rxnorm_drugcode` is set; dosage text from dosage, unit, route and interval).
 * @throws `ValidationError` (`@cdss/core`) when the row is invalid
 */
export function prescriptionToFhir(input: unknown, options: ClinicalMapperOptions = {}): MedicationRequest {
  const ctx = mapperContext(options);
  const r = parseInput(openEmrPrescriptionSchema, input, 'OpenEMR prescription');
  const rxcui = r.rxnorm_drugcode?.replace(/^(RXCUI|RXNORM):/i, '').trim();
  const dosageText = [r.dosage, r.unit, r.route, r.interval].filter((x) => x !== undefined && x !== '').join(' ');
  const qty = r.quantity !== undefined && /^\d+(\.\d+)?$/.test(r.quantity) ? Number(r.quantity) : undefined;
  const start = r.start_date ?? r.date_added;
  return compact({
    resourceType: 'MedicationRequest' as const,
    identifier: [{ system: ctx.systems.prescriptionUuid, value: r.uuid }],
    status:
      r.active === '0' ? ('stopped' as const) : r.end_date !== undefined ? ('completed' as const) : ('active' as const),
    intent: 'order' as const,
    medicationCodeableConcept: compact({
      coding: rxcui && /^\d+$/.test(rxcui) ? [{ system: CODE_SYSTEMS.rxnorm, code: rxcui }] : undefined,
      text: r.drug,
    }),
    subject: subjectFor(ctx, r.puuid, options, 'OpenEMR prescription'),
    authoredOn: r.date_added ? toFhirDateTime(r.date_added, ctx.utcOffset) : undefined,
    dosageInstruction: dosageText ? [{ text: dosageText }] : undefined,
    dispenseRequest:
      qty !== undefined || start !== undefined
        ? compact({
            quantity: qty !== undefined ? { value: qty } : undefined,
            validityPeriod: start
              ? compact({ start: toFhirDate(start), end: r.end_date ? toFhirDate(r.end_date) : undefined })
              : undefined,
          })
        : undefined,
    note: r.note ? [{ text: r.note }] : undefined,
  });
}
