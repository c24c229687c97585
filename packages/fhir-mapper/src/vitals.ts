/**
 * OpenEMR vitals -> FHIR R4 vital-signs Observations (LOINC codes, UCUM units, the R4 vital-signs
 * profiles), and back. OpenEMR stores US units (lb, in, degF) unless its `units_of_measurement`
 * global is metric; its rows say which in `<field>_unit`. FHIR gets kg, cm and Cel.
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';
import type { Observation, ObservationComponent } from 'fhir/r4.js';
import { CODES, concept, quantity, type CodeName, type UnitName } from './codes.js';
import { mapperContext } from './context.js';
import type { ClinicalMapperOptions } from './openemr-mapper.js';
import { openEmrVitalsSchema } from './openemr-schemas.js';
import { CODE_SYSTEMS, PROFILES } from './systems.js';
import { compact, parseInput, round, toFhirDateTime } from './util.js';
import { patientLogicalReference } from './context.js';

/** Exact unit conversions (NIST): 1 lb = 0.45359237 kg, 1 in = 2.54 cm. */
export const UNIT_CONVERSIONS = {
  lbToKg: (lb: number): number => round(lb * 0.45359237, 2),
  kgToLb: (kg: number): number => round(kg / 0.45359237, 2),
  inToCm: (inch: number): number => round(inch * 2.54, 2),
  cmToIn: (cm: number): number => round(cm / 2.54, 2),
  fToC: (f: number): number => round(((f - 32) * 5) / 9, 2),
  cToF: (c: number): number => round((c * 9) / 5 + 32, 2),
} as const;

function isMetric(unit: string | undefined, metric: readonly string[]): boolean {
  return unit !== undefined && metric.includes(unit.trim().toLowerCase());
}

interface Single {
  field:
    | 'weight'
    | 'height'
    | 'temperature'
    | 'pulse'
    | 'respiration'
    | 'BMI'
    | 'oxygen_saturation'
    | 'head_circ'
    | 'waist_circ';
  codes: readonly CodeName[];
  profile: string;
  unit: UnitName;
  /** Converts OpenEMR's value (in the unit its row names) to the FHIR unit. */
  convert: (value: number, unitField: string | undefined) => number;
}

const lengthToCm = (v: number, u: string | undefined): number => (isMetric(u, ['cm']) ? v : UNIT_CONVERSIONS.inToCm(v));

const SINGLES: readonly Single[] = [
  {
    field: 'weight',
    codes: ['bodyWeight'],
    profile: PROFILES.bodyWeight,
    unit: 'kg',
    convert: (v, u) => (isMetric(u, ['kg']) ? v : UNIT_CONVERSIONS.lbToKg(v)),
  },
  { field: 'height', codes: ['bodyHeight'], profile: PROFILES.bodyHeight, unit: 'cm', convert: lengthToCm },
  {
    field: 'temperature',
    codes: ['bodyTemperature'],
    profile: PROFILES.bodyTemp,
    unit: 'Cel',
    convert: (v, u) => (isMetric(u, ['cel', 'c', 'degc']) ? v : UNIT_CONVERSIONS.fToC(v)),
  },
  { field: 'pulse', codes: ['heartRate'], profile: PROFILES.heartRate, unit: 'perMin', convert: (v) => v },
  { field: 'respiration', codes: ['respiratoryRate'], profile: PROFILES.respRate, unit: 'perMin', convert: (v) => v },
  { field: 'BMI', codes: ['bmi'], profile: PROFILES.bmi, unit: 'kgPerM2', convert: (v) => v },
  {
    field: 'oxygen_saturation',
    codes: ['oxygenSaturation', 'pulseOximetry'],
    profile: PROFILES.oxygenSat,
    unit: 'percent',
    convert: (v) => v,
  },
  { field: 'head_circ', codes: ['headCircumference'], profile: PROFILES.headCircum, unit: 'cm', convert: lengthToCm },
  { field: 'waist_circ', codes: ['waistCircumference'], profile: PROFILES.vitalSigns, unit: 'cm', convert: lengthToCm },
];

const UNIT_FIELD: Partial<
  Record<Single['field'], 'weight_unit' | 'height_unit' | 'temperature_unit' | 'head_circ_unit' | 'waist_circ_unit'>
> = {
  weight: 'weight_unit',
  height: 'height_unit',
  temperature: 'temperature_unit',
  head_circ: 'head_circ_unit',
  waist_circ: 'waist_circ_unit',
};

/**
 * OpenEMR vitals row -> one vital-signs Observation per measured value (blood pressure as one panel
 * with systolic and diastolic components). Values OpenEMR stores as 0 (not measured) are skipped.
 * @param input - the vitals row (OpenEMR field names)
 * @param options - site, clock offset and subject
 * @returns the Observations, each with an identifier `<vitals uuid or id>:<measure>` for idempotent writes
 * @throws `ValidationError` (`@cdss/core`) when the row is invalid
 */
export function vitalsToObservations(input: unknown, options: ClinicalMapperOptions = {}): Observation[] {
  const ctx = mapperContext(options);
  const v = parseInput(openEmrVitalsSchema, input, 'OpenEMR vitals');
  const subject =
    options.subject ??
    (v.puuid
      ? patientLogicalReference(ctx, v.puuid)
      : v.pid
        ? { type: 'Patient', identifier: { system: ctx.systems.patientPid, value: v.pid } }
        : undefined);
  if (!subject) {
    throw new ValidationError('Invalid OpenEMR vitals', [
      {
        path: 'puuid',
        message: 'The row has no puuid or pid and no subject option was given',
        code: 'missing_subject',
      },
    ]);
  }
  const key = v.uuid ?? `id-${v.id as string}`;
  const effective = toFhirDateTime(v.date, ctx.utcOffset);
  const base = (measure: string, codes: readonly CodeName[], profile: string): Observation => ({
    resourceType: 'Observation',
    meta: { profile: [profile] },
    identifier: [{ system: ctx.systems.vitalsId, value: `${key}:${measure}` }],
    status: 'final',
    category: [concept('categoryVitalSigns')],
    code: concept(codes),
    subject,
    effectiveDateTime: effective,
  });
  const out: Observation[] = [];
  if (v.bps !== undefined || v.bpd !== undefined) {
    const component: ObservationComponent[] = [];
    if (v.bps !== undefined) component.push({ code: concept('systolicBp'), valueQuantity: quantity(v.bps, 'mmHg') });
    if (v.bpd !== undefined) component.push({ code: concept('diastolicBp'), valueQuantity: quantity(v.bpd, 'mmHg') });
    out.push({ ...base('bp', ['bpPanel'], PROFILES.bp), component });
  }
  for (const s of SINGLES) {
    const value = v[s.field];
    if (value === undefined) continue;
    const unitField = UNIT_FIELD[s.field];
    const converted = s.convert(value, unitField ? v[unitField] : undefined);
    const obs: Observation = { ...base(s.field, s.codes, s.profile), valueQuantity: quantity(converted, s.unit) };
    if (s.field === 'temperature' && v.temp_method) obs.method = { text: v.temp_method };
    out.push(obs);
  }
  if (v.note && out[0]) out[0].note = [{ text: v.note }];
  return out;
}

/** The OpenEMR vitals fields {@link observationsToVitals} fills (US units, as OpenEMR's API expects). */
export interface OpenEmrVitalsWrite {
  date?: string;
  bps?: number;
  bpd?: number;
  weight?: number;
  height?: number;
  temperature?: number;
  pulse?: number;
  respiration?: number;
  BMI?: number;
  oxygen_saturation?: number;
  head_circ?: number;
  waist_circ?: number;
}

function loincOf(o: Observation): string[] {
  return (o.code.coding ?? []).filter((c) => c.system === CODE_SYSTEMS.loinc).map((c) => c.code ?? '');
}

/**
 * Vital-signs Observations -> the OpenEMR vitals body to POST (lb, in, degF), the inverse of
 * {@link vitalsToObservations}. Observations with other codes are ignored.
 * @throws `ValidationError` (`@cdss/core`) when a recognised Observation carries a unit it cannot convert
 */
export function observationsToVitals(observations: readonly Observation[]): OpenEmrVitalsWrite {
  const out: OpenEmrVitalsWrite = {};
  const issues: { path: string; message: string; code: string }[] = [];
  observations.forEach((o, i) => {
    const codes = loincOf(o);
    const has = (name: CodeName): boolean => codes.includes(CODES[name].code);
    const q = o.valueQuantity;
    const num = q?.value;
    const unit = q?.code ?? q?.unit;
    const bad = (): void => {
      issues.push({
        path: `${i}.valueQuantity`,
        message: `Unsupported unit for LOINC ${codes[0] ?? ''}`,
        code: 'invalid_unit',
      });
    };
    if (o.effectiveDateTime && out.date === undefined) out.date = o.effectiveDateTime.slice(0, 19).replace('T', ' ');
    if (has('bpPanel')) {
      for (const c of o.component ?? []) {
        const cc = (c.code.coding ?? []).map((x) => x.code);
        if (cc.includes(CODES.systolicBp.code) && c.valueQuantity?.value !== undefined) out.bps = c.valueQuantity.value;
        if (cc.includes(CODES.diastolicBp.code) && c.valueQuantity?.value !== undefined)
          out.bpd = c.valueQuantity.value;
      }
      return;
    }
    if (num === undefined) return;
    if (has('bodyWeight')) {
      if (unit === 'kg') out.weight = UNIT_CONVERSIONS.kgToLb(num);
      else if (unit === '[lb_av]' || unit === 'lb') out.weight = num;
      else bad();
    } else if (has('bodyHeight') || has('headCircumference') || has('waistCircumference')) {
      const inches =
        unit === 'cm' ? UNIT_CONVERSIONS.cmToIn(num) : unit === '[in_i]' || unit === 'in' ? num : undefined;
      if (inches === undefined) bad();
      else if (has('bodyHeight')) out.height = inches;
      else if (has('headCircumference')) out.head_circ = inches;
      else out.waist_circ = inches;
    } else if (has('bodyTemperature')) {
      if (unit === 'Cel') out.temperature = UNIT_CONVERSIONS.cToF(num);
      else if (unit === '[degF]' || unit === 'degF') out.temperature = num;
      else bad();
    } else if (has('heartRate')) out.pulse = num;
    else if (has('respiratoryRate')) out.respiration = num;
    else if (has('bmi')) out.BMI = num;
    else if (has('oxygenSaturation') || has('pulseOximetry')) out.oxygen_saturation = num;
  });
  if (issues.length > 0) throw new ValidationError('Invalid vital-signs Observations', issues);
  return compact(out);
}
