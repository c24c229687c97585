/**
 * Errors of DICOM parsing and of building volumes from series.
 * @packageDocumentation
 */
import { CdssError } from '@cdss/core';

/**
 * A byte stream is not a DICOM Part-10 file we can read: no `DICM` prefix, truncated, an element whose length
 * runs past the end, an unsupported transfer syntax, a missing or malformed required attribute.
 * `offset` is the byte position where the problem was found, when known.
 * @category Errors
 */
export class DicomParseError extends CdssError {
  /** Byte offset of the problem in the input, when known. */
  readonly offset: number | undefined;
  /** Which input (file name, SOP Instance UID, index), when the caller said. */
  readonly source: string | undefined;

  constructor(message: string, options: { offset?: number; source?: string; cause?: unknown } = {}) {
    const where = options.source === undefined ? '' : `${options.source}: `;
    const at = options.offset === undefined ? '' : ` (at byte ${options.offset})`;
    super(`${where}${message}${at}`, { code: 'DICOM_PARSE_ERROR', cause: options.cause });
    this.offset = options.offset;
    this.source = options.source;
  }
}

/** What is wrong with a series' geometry. */
export type SeriesProblem =
  'empty' | 'missing-slice' | 'uneven-spacing' | 'duplicate-position' | 'inconsistent' | 'not-stacked' | 'unsupported';

/**
 * A set of slices does not make one regular volume: a missing slice, uneven spacing, two slices at one
 * position, slices of different size/orientation/series, or slices not stacked along their normal.
 * @category Errors
 */
export class SeriesGeometryError extends CdssError {
  /** The kind of problem. */
  readonly problem: SeriesProblem;
  /** For `missing-slice`: positions (mm along the normal) after which slices are missing, and how many. */
  readonly gaps: ReadonlyArray<{ after: number; before: number; missing: number }>;

  constructor(
    problem: SeriesProblem,
    message: string,
    gaps: ReadonlyArray<{ after: number; before: number; missing: number }> = [],
  ) {
    super(message, { code: 'SERIES_GEOMETRY_ERROR' });
    this.problem = problem;
    this.gaps = gaps;
  }
}

/**
 * A study lacks a series the caller needs (e.g. no FLAIR), or has several that match one channel ambiguously.
 * `missing` names the channels with no match.
 * @category Errors
 */
export class StudySeriesError extends CdssError {
  /** Channels with no matching series. */
  readonly missing: readonly string[];

  constructor(message: string, missing: readonly string[]) {
    super(message, { code: 'STUDY_SERIES_ERROR' });
    this.missing = missing;
  }
}
