/**
 * RANO-style volumetric response assessment of the enhancing tumour across a patient's analyses, and
 * its FHIR form, an mCODE CancerDiseaseStatus Observation.
 *
 * Volumetric thresholds (cai4cai/rano2.0-assist; mRANO, Ellingson 2017): complete response (CR) when
 * the enhancing tumour has disappeared; partial response (PR) at a decrease of at least 65 % from
 * baseline; progression (PD) at an increase of at least 40 % from the nadir (the smallest earlier
 * volume); stable disease (SD) otherwise. A new lesion, worse non-target disease or clinical
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
  /** Study date (ISO date or dateTime with zone). */
  date: z.union([z.iso.datetime({ offset: true }), z.iso.date()]),
  /** Enhancing-tumour volume, mL. */
  enhancingMl: z.number().finite().nonnegative(),
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

/** The assessment. */
export interface RanoAssessment {
  category: RanoCategory;
  /** CR/PR confirmed by an earlier assessment ≥ 28 days before; PD and SD need no confirmation. */
  confirmed: boolean;
  /** Change from baseline, percent (negative = shrinkage). */
  changeFromBaselinePct: number;
  /** Change from the nadir, percent. */
  changeFromNadirPct: number;
  nadirMl: number;
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

function volumetric(current: number, baseline: number, nadir: number, minMeasurable: number): RanoCategory {
  if (nadir > 0 ? current / nadir >= 1.4 - EPS : current >= minMeasurable) return 'PD';
  if (baseline < minMeasurable) return 'SD';
  if (current === 0) return 'CR';
  if (current / baseline <= 0.35 + EPS) return 'PR';
  return 'SD';
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
  const nadir = Math.min(v.baseline.enhancingMl, ...earlier.map((p) => p.enhancingMl));
  const reasons: string[] = [];
  let category = volumetric(v.current.enhancingMl, v.baseline.enhancingMl, nadir, v.minMeasurableMl);
  reasons.push(
    `volumetric: ${category} (ET ${round(v.current.enhancingMl, 2)} mL; baseline ${round(v.baseline.enhancingMl, 2)} mL; nadir ${round(nadir, 2)} mL)`,
  );
  if (v.baseline.enhancingMl < v.minMeasurableMl)
    reasons.push(`baseline below the measurable ${v.minMeasurableMl} mL: no response can be assessed`);
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
      const c = volumetric(p.enhancingMl, v.baseline.enhancingMl, nadir, v.minMeasurableMl);
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
    confirmed,
    changeFromBaselinePct: pct(v.current.enhancingMl, v.baseline.enhancingMl),
    changeFromNadirPct: pct(v.current.enhancingMl, nadir),
    nadirMl: nadir,
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
      `RANO volumetric: ${assessment.category}${assessment.confirmed ? '' : ' (unconfirmed)'}`,
    ),
    derivedFrom: [v.baseline, ...v.previous, v.current].map((t) => ({
      type: 'DiagnosticReport',
      identifier: { system: ctx.systems.analysis, value: t.analysisId },
    })),
    note: [{ text: assessment.reasons.join('; ') }],
  });
  return { observation, assessment };
}
