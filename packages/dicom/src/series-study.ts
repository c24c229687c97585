/**
 * Choosing the four series of a brain-tumour study (T1c, T1, T2, FLAIR) and stacking them into the model's
 * 4-channel input.
 *
 * Scanners name series freely ("t1_mprage_sag_p2_iso", "AX T1 POST GAD", "t2_tirm_tra_dark-fluid"), so selection is
 * by rules: regular expressions over SeriesDescription, and tag predicates (ContrastBolusAgent present,
 * InversionTime, ScanningSequence). The default rules cover the usual vendor names; pass your own for a site.
 * @packageDocumentation
 */
import { StudySeriesError } from './dicom-errors.js';
import { sameGrid, type Volume } from './volume.js';

/** The four channels, in model input order. */
export const STUDY_CHANNELS = ['t1c', 't1', 't2', 'flair'] as const;
/** One of {@link STUDY_CHANNELS}. */
export type StudyChannel = (typeof STUDY_CHANNELS)[number];

/** What selection looks at for each series: its description and a few acquisition tags (DICOM keywords). */
export interface SeriesCandidate {
  /** Series Instance UID. */
  seriesInstanceUid: string;
  /** Series Description (may be empty). */
  description: string;
  /** Modality, e.g. MR. */
  modality?: string | undefined;
  /** Other tags by DICOM keyword, as strings (e.g. `ContrastBolusAgent`, `InversionTime`, `ScanningSequence`). */
  tags?: Readonly<Record<string, string | undefined>>;
}

/** A rule for one channel: every given condition must hold. */
export interface SeriesRule {
  /** SeriesDescription must match. */
  description?: RegExp;
  /** SeriesDescription must not match. */
  notDescription?: RegExp;
  /** Tags that must match (an absent tag never matches). */
  tags?: Readonly<Record<string, RegExp>>;
  /** Tags that must be absent or empty. */
  absentTags?: readonly string[];
}

/** Rules per channel; a channel matches a series when any of its rules holds. */
export type SelectionRules = Readonly<Record<StudyChannel, readonly SeriesRule[]>>;

const CONTRAST = /(\bpost\b|\+ ?c\b|\bce\b|\bgd\b|gad|contrast|\bkm\b|t1c|t1ce|t1gd|\bc\+)/i;

/** Default rules: common vendor and BraTS naming, and the acquisition tags that distinguish the contrasts. */
export const DEFAULT_SELECTION_RULES: SelectionRules = {
  t1c: [
    { description: /t1/i, tags: { ContrastBolusAgent: /\S/ } },
    { description: new RegExp(`t1.*${CONTRAST.source}|${CONTRAST.source}.*t1`, 'i') },
  ],
  t1: [{ description: /t1/i, notDescription: CONTRAST, absentTags: ['ContrastBolusAgent'] }],
  t2: [{ description: /t2/i, notDescription: /flair|tirm|dark.?fluid|\bir\b/i }],
  flair: [
    { description: /flair|tirm|dark.?fluid/i },
    { description: /t2/i, tags: { InversionTime: /^(1[5-9]\d\d|[2-9]\d\d\d)(\.\d*)?$/ } },
  ],
};

function ruleHolds(rule: SeriesRule, s: SeriesCandidate): boolean {
  if (rule.description && !rule.description.test(s.description)) return false;
  if (rule.notDescription?.test(s.description)) return false;
  for (const [tag, re] of Object.entries(rule.tags ?? {})) {
    const v = s.tags?.[tag];
    if (v === undefined || !re.test(v)) return false;
  }
  for (const tag of rule.absentTags ?? []) {
    const v = s.tags?.[tag];
    if (v !== undefined && v.trim() !== '') return false;
  }
  return true;
}

/**
 * Picks one series per channel. A series is used for one channel only; channels are matched in the order
 * T1c, FLAIR, T1, T2 (most specific first), and when several series match a channel the first in `series`
 * order wins (sort by SeriesNumber beforehand to prefer the latest acquisition, or tighten the rules).
 * @param series - the study's series
 * @param rules - selection rules; default {@link DEFAULT_SELECTION_RULES}
 * @returns the chosen series per channel
 * @throws {@link StudySeriesError} naming every channel with no match and listing the series present
 */
export function selectStudySeries<S extends SeriesCandidate>(
  series: readonly S[],
  rules: SelectionRules = DEFAULT_SELECTION_RULES,
): Record<StudyChannel, S> {
  const chosen: Partial<Record<StudyChannel, S>> = {};
  const used = new Set<string>();
  for (const channel of ['t1c', 'flair', 't1', 't2'] as const) {
    const hit = series.find(
      (s) =>
        !used.has(s.seriesInstanceUid) &&
        (s.modality === undefined || s.modality === 'MR') &&
        rules[channel].some((r) => ruleHolds(r, s)),
    );
    if (hit) {
      chosen[channel] = hit;
      used.add(hit.seriesInstanceUid);
    }
  }
  const missing = STUDY_CHANNELS.filter((c) => chosen[c] === undefined);
  if (missing.length > 0) {
    const present = series.map((s) => `"${s.description}"`).join(', ') || 'none';
    throw new StudySeriesError(
      `study has no series for ${missing.map((m) => m.toUpperCase()).join(', ')} (series present: ${present})`,
      missing,
    );
  }
  return chosen as Record<StudyChannel, S>;
}

/** The 4-channel input: one volume per channel on one grid, plus which series each came from. */
export interface StudyInput {
  /** Volumes in {@link STUDY_CHANNELS} order. */
  channels: [Volume, Volume, Volume, Volume];
  /** Series Instance UID per channel. */
  seriesInstanceUids: Record<StudyChannel, string>;
}

/**
 * Stacks the chosen series' volumes into the 4-channel input, checking they share one grid (co-registered,
 * as BraTS data is; resampling is not done here).
 * @param volumes - a volume per channel, and the series each came from
 * @returns the channels in T1c, T1, T2, FLAIR order
 * @throws {@link StudySeriesError} when a channel is missing or the grids differ
 */
export function buildStudyInput(
  volumes: Readonly<Record<StudyChannel, { volume: Volume; seriesInstanceUid: string }>>,
): StudyInput {
  const missing = STUDY_CHANNELS.filter((c) => volumes[c] === undefined);
  if (missing.length > 0) throw new StudySeriesError(`missing channel(s) ${missing.join(', ')}`, missing);
  const ref = volumes.t1c.volume;
  for (const c of STUDY_CHANNELS) {
    if (!sameGrid(ref, volumes[c].volume)) {
      throw new StudySeriesError(
        `series for ${c.toUpperCase()} is on a different grid than T1C (dims ${volumes[c].volume.dims.join('×')} vs ${ref.dims.join('×')}): register/resample first`,
        [],
      );
    }
  }
  return {
    channels: [volumes.t1c.volume, volumes.t1.volume, volumes.t2.volume, volumes.flair.volume],
    seriesInstanceUids: {
      t1c: volumes.t1c.seriesInstanceUid,
      t1: volumes.t1.seriesInstanceUid,
      t2: volumes.t2.seriesInstanceUid,
      flair: volumes.flair.seriesInstanceUid,
    },
  };
}
