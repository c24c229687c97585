/**
 * RANO response assessment of the enhancing tumour across a patient's analyses, volumetric and
 * bidimensional, and its FHIR form, an mCODE CancerDiseaseStatus Observation.
 *
 * Volumetric thresholds (cai4cai/rano2.0-assist; mRANO, Ellingson 2017): complete response (CR) when
 * the enhancing tumour has disappeared; partial response (PR) at a decrease of at least 65 % from
 * baseline; progression (PD) at an increase of at least 40 % from the nadir (the smallest earlier
 * volume); stable disease (SD) otherwise.
 *
 * Bidimensional thresholds (RANO, Wen et al., J Clin Oncol 2010;28:1963): the sum of the products of
 * the perpendicular diameters (SPD) of the enhancing lesions; PR at a decrease of at least 50 % from
 * baseline, PD at an increase of at least 25 % from the nadir, CR when no enhancing disease is left. A
 * lesion is measurable when both diameters are at least 10 mm, so an SPD below 100 mm² is not measurable
 * disease. When every timepoint carries an SPD the status follows the bidimensional criteria (RANO's
 * own); otherwise the volumetric ones. Both are always reported, with which one produced the status. A new lesion, worse non-target disease or clinical
 * deterioration is PD whatever the volumes; a steroid increase alone is not. CR and PR count as
 * confirmed only when an assessment at least 4 weeks earlier met the same threshold. A baseline
 * below the measurable size cannot show a response (then SD, or PD by increase or override).
 * @packageDocumentation
 */
import { z } from 'zod';
import type { Observation, Reference } from 'fhir/r4.js';
import { concept, type CodeName } from './codes.js';
import { mapperContext, patientLogicalReference, type MapperOptions } from './context.js';
import { EXTENSIONS, PROFILES } from './systems.js';
import { compact, parseInput, round } from './util.js';

const timepointSchema = z.object({
  /** The analysis (AI job) id of this timepoint. */
  analysisId: z.string().min(1),
  /** Scan date: ISO date, or dateTime (with a zone, or local as DICOM StudyDate + StudyTime give it). */
  date: z.union([z.iso.datetime({ offset: true, local: true }), z.iso.date()]),
  /** Enhancing-tumour volume, mL. */
  enhancingMl: z.number().finite().nonnegative(),
  /** Sum of the products of the perpendicular diameters of the enhancing lesions, mm² (bidimensional RANO). */
  sumOfProductsMm2: z.number().finite().nonnegative().optional(),
});

/** Input of {@link assessRano}. */
export const ranoInputSchema = z
  .object({
    patientUuid: z.uuid(),
    /** Baseline (for newly diagnosed GBM: the post-radiotherapy scan). */
    baseline: timepointSchema,
    /** Follow-ups before the current one, any order. */
    previous: z.array(timepointSchema).default([]),
    current: timepointSchema,
    newLesion: z.boolean().default(false),
    nonTargetProgression: z.boolean().default(false),
    clinicalDeterioration: z.boolean().default(false),
    /** Recorded for the report; alone it never makes PD. */
    steroidIncrease: z.boolean().default(false),
    /** Smallest enhancing volume that counts as measurable disease, mL (default 1 mL). */
    minMeasurableMl: z.number().positive().default(1),
    /** Smallest SPD that counts as measurable disease, mm² (default 100: one 10 × 10 mm lesion). */
    minMeasurableMm2: z.number().positive().default(100),
    /** The Condition (primary cancer) the status is about; default the patient's mCODE Tumor by identifier. */
    focus: z.object({ reference: z.string().min(1) }).optional(),
  })
  .superRefine((v, ctx) => {
    const t = (d: string): number => Date.parse(d);
    for (const [i, p] of v.previous.entries()) {
      if (t(p.date) < t(v.baseline.date) || t(p.date) > t(v.current.date))
        ctx.addIssue({
          code: 'custom',
          path: ['previous', i, 'date'],
          message: 'must lie between baseline and current',
        });
    }
    if (t(v.current.date) <= t(v.baseline.date))
      ctx.addIssue({ code: 'custom', path: ['current', 'date'], message: 'must be after the baseline' });
  });

/** Input of {@link assessRano}. */
export type RanoInput = z.input<typeof ranoInputSchema>;

/** RANO response categories (NE = not evaluable). */
export type RanoCategory = 'CR' | 'PR' | 'SD' | 'PD' | 'NE';

/** Which criteria produced a category. */
export type RanoCriteria = 'bidimensional' | 'volumetric';

/** The assessment. */
export interface RanoAssessment {
  category: RanoCategory;
  /** The criteria that produced `category` (bidimensional when every timepoint has an SPD). */
  criteria: RanoCriteria;
  /** The category by each criteria that could be applied (before overrides such as a new lesion). */
  byCriteria: { volumetric: RanoCategory; bidimensional?: RanoCategory };
  /** CR/PR confirmed by an earlier assessment ≥ 28 days before; PD and SD need no confirmation. */
  confirmed: boolean;
  /** Change from baseline, percent (negative = shrinkage). */
  changeFromBaselinePct: number;
  /** Change from the nadir, percent. */
  changeFromNadirPct: number;
  nadirMl: number;
  /** Bidimensional figures, when every timepoint has an SPD: changes in percent, nadir in mm². */
  sumOfProducts?: { changeFromBaselinePct: number; changeFromNadirPct: number; nadirMm2: number };
  /** Why, in words (for the Observation's note). */
  reasons: string[];
}

const DAY = 86_400_000;

function pct(now: number, ref: number): number {
  if (ref === 0) return now === 0 ? 0 : Number.POSITIVE_INFINITY;
  return round(((now - ref) / ref) * 100, 1);
}

/** Ratios are compared with a tolerance so that exactly +40 % or -65 % (in floating point) meets the threshold. */
const EPS = 1e-9;

/** Thresholds of one set of criteria: PD at `progression` × nadir, PR at `response` × baseline. */
interface Thresholds {
  progression: number;
  response: number;
  minMeasurable: number;
}

const VOLUMETRIC = { progression: 1.4, response: 0.35 } as const;
const BIDIMENSIONAL = { progression: 1.25, response: 0.5 } as const;

function classify(current: number, baseline: number, nadir: number, t: Thresholds): RanoCategory {
  if (nadir > 0 ? current / nadir >= t.progression - EPS : current >= t.minMeasurable) return 'PD';
  if (baseline < t.minMeasurable) return 'SD';
  if (current === 0) return 'CR';
  if (current / baseline <= t.response + EPS) return 'PR';
  return 'SD';
}

type Timepoint = z.output<typeof timepointSchema>;

/** One criteria's view: the measure of a timepoint and its thresholds. */
interface Criteria {
  name: RanoCriteria;
  measure(p: Timepoint): number;
  thresholds: Thresholds;
  unit: string;
}

/**
 * Classifies the current timepoint (see the module comment for the rules).
 * @throws `ValidationError` (`@cdss/core`) on invalid input
 */
export function assessRano(input: unknown): RanoAssessment {
  return assess(parseInput(ranoInputSchema, input, 'RANO assessment input'));
}

function assess(v: z.output<typeof ranoInputSchema>): RanoAssessment {
  const earlier = [...v.previous].sort((a, b) => Date.parse(a.date) - Date.parse(b.date));
  const all = [v.baseline, ...earlier, v.current];
  const volumetric: Criteria = {
    name: 'volumetric',
    measure: (p) => p.enhancingMl,
    thresholds: { ...VOLUMETRIC, minMeasurable: v.minMeasurableMl },
    unit: 'mL',
  };
  const bidimensional: Criteria | undefined = all.every((p) => p.sumOfProductsMm2 !== undefined)
    ? {
        name: 'bidimensional',
        measure: (p) => p.sumOfProductsMm2 ?? 0,
        thresholds: { ...BIDIMENSIONAL, minMeasurable: v.minMeasurableMm2 },
        unit: 'mm²',
      }
    : undefined;
  const evaluate = (c: Criteria) => {
    const nadir = Math.min(...[v.baseline, ...earlier].map(c.measure));
    const baseline = c.measure(v.baseline);
    const categoryOf = (p: Timepoint): RanoCategory => classify(c.measure(p), baseline, nadir, c.thresholds);
    return { nadir, baseline, current: c.measure(v.current), category: categoryOf(v.current), categoryOf };
  };
  const vol = evaluate(volumetric);
  const bi = bidimensional ? evaluate(bidimensional) : undefined;
  const chosen = bi && bidimensional ? { c: bidimensional, r: bi } : { c: volumetric, r: vol };
  const reasons: string[] = [];
  const describe = (c: Criteria, r: typeof vol, label: string) =>
    `${c.name}: ${r.category} (${label} ${round(r.current, 2)} ${c.unit}; baseline ${round(r.baseline, 2)} ${c.unit}; nadir ${round(r.nadir, 2)} ${c.unit})`;
  if (bi && bidimensional) reasons.push(describe(bidimensional, bi, 'SPD'));
  reasons.push(describe(volumetric, vol, 'ET'));
  reasons.push(`status by the ${chosen.c.name} criteria`);
  if (chosen.r.baseline < chosen.c.thresholds.minMeasurable)
    reasons.push(
      `baseline below the measurable ${chosen.c.thresholds.minMeasurable} ${chosen.c.unit}: no response can be assessed`,
    );
  let category = chosen.r.category;
  const overrides = [
    v.newLesion && 'new lesion',
    v.nonTargetProgression && 'non-target progression',
    v.clinicalDeterioration && 'clinical deterioration',
  ].filter((x): x is string => typeof x === 'string');
  if (overrides.length > 0) {
    category = 'PD';
    reasons.push(`progression by ${overrides.join(', ')}`);
  }
  if (v.steroidIncrease) reasons.push('steroid increase noted (not progression by itself)');
  let confirmed = category === 'PD' || category === 'SD';
  if (category === 'CR' || category === 'PR') {
    const cutoff = Date.parse(v.current.date) - 28 * DAY;
    confirmed = earlier.some((p) => {
      if (Date.parse(p.date) > cutoff) return false;
      const c = chosen.r.categoryOf(p);
      return category === 'CR' ? c === 'CR' : c === 'CR' || c === 'PR';
    });
    reasons.push(
      confirmed
        ? 'confirmed by an assessment at least 4 weeks earlier'
        : 'unconfirmed: needs a confirming scan at least 4 weeks later',
    );
  }
  return {
    category,
    criteria: chosen.c.name,
    byCriteria: { volumetric: vol.category, ...(bi ? { bidimensional: bi.category } : {}) },
    confirmed,
    changeFromBaselinePct: pct(vol.current, vol.baseline),
    changeFromNadirPct: pct(vol.current, vol.nadir),
    nadirMl: vol.nadir,
    ...(bi
      ? {
          sumOfProducts: {
            changeFromBaselinePct: pct(bi.current, bi.baseline),
            changeFromNadirPct: pct(bi.current, bi.nadir),
            nadirMm2: bi.nadir,
          },
        }
      : {}),
    reasons,
  };
}

const STATUS_CODE: Record<RanoCategory, CodeName> = {
  CR: 'conditionImproved',
  PR: 'conditionImproved',
  SD: 'conditionStable',
  PD: 'conditionWorsened',
  NE: 'conditionUndetermined',
};

/** Options of {@link ranoToCancerDiseaseStatus}. */
export interface RanoMapperOptions extends MapperOptions {
  /** The subject; default a logical reference by the OpenEMR patient uuid. */
  subject?: Reference;
}

/**
 * Assesses the current timepoint and maps it to an mCODE CancerDiseaseStatus Observation (LOINC
 * 97509-4; CR/PR -> improved, SD -> stable, PD -> worsened, NE -> undetermined; evidence: imaging).
 * Unconfirmed CR/PR are `preliminary`.
 * @returns the Observation and the assessment it is built from
 * @throws `ValidationError` (`@cdss/core`) on invalid input
 */
export function ranoToCancerDiseaseStatus(
  input: unknown,
  options: RanoMapperOptions = {},
): { observation: Observation; assessment: RanoAssessment } {
  const ctx = mapperContext(options);
  const v = parseInput(ranoInputSchema, input, 'RANO assessment input');
  const assessment = assess(v);
  const subject = options.subject ?? patientLogicalReference(ctx, v.patientUuid);
  const focus: Reference = v.focus ?? {
    type: 'BodyStructure',
    identifier: { system: ctx.systems.tumor, value: `${v.patientUuid}:brain-1` },
  };
  const observation: Observation = compact({
    resourceType: 'Observation' as const,
    meta: { profile: [PROFILES.cancerDiseaseStatus] },
    extension: [{ url: EXTENSIONS.mcodeEvidenceType, valueCodeableConcept: concept('imaging') }],
    identifier: [{ system: ctx.systems.analysis, value: `${v.current.analysisId}:disease-status` }],
    status:
      (assessment.category === 'CR' || assessment.category === 'PR') && !assessment.confirmed
        ? ('preliminary' as const)
        : ('final' as const),
    category: [concept('categoryImaging')],
    code: concept('cancerDiseaseStatus'),
    subject,
    focus: [focus],
    effectiveDateTime: v.current.date,
    valueCodeableConcept: concept(
      STATUS_CODE[assessment.category],
      `RANO ${assessment.criteria}: ${assessment.category}${assessment.confirmed ? '' : ' (unconfirmed)'}`,
    ),
    derivedFrom: [v.baseline, ...v.previous, v.current].map((t) => ({
      type: 'DiagnosticReport',
      identifier: { system: ctx.systems.analysis, value: t.analysisId },
    })),
    note: [{ text: assessment.reasons.join('; ') }],
  });
  return { observation, assessment };
}
