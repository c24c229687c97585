/**
 * Orthanc's REST metadata (`GET /studies/{id}` and `GET /series/{id}`) -> the `study` part of an
 * {@link AnalysisResultInput}, so the ImagingStudy is built from what the PACS actually holds.
 * @packageDocumentation
 */
import { z } from 'zod';
import type { AnalysisResultInput } from './ai-result.js';
import { dicomUidSchema } from './ai-result.js';
import { mapperOptionsSchema } from './context.js';
import { parseInput } from './util.js';

/** DICOM DA (`YYYYMMDD`). */
const da = z.string().regex(/^\d{8}$/);
/** DICOM TM (`HHMMSS[.ffffff]`, or shorter). */
const tm = z.string().regex(/^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/);

/** The part of Orthanc's `GET /studies/{id}` answer the mapper reads. */
export const orthancStudySchema = z.object({
  ID: z.string().min(1),
  MainDicomTags: z.object({
    StudyInstanceUID: dicomUidSchema,
    StudyDate: da.optional(),
    StudyTime: tm.optional(),
    StudyDescription: z.string().optional(),
    AccessionNumber: z.string().optional(),
  }),
});

/** The part of Orthanc's `GET /series/{id}` answer the mapper reads. */
export const orthancSeriesSchema = z.object({
  ID: z.string().min(1),
  MainDicomTags: z.object({
    SeriesInstanceUID: dicomUidSchema,
    Modality: z.string().regex(/^[A-Z0-9]{1,16}$/),
    SeriesNumber: z.union([z.number().int(), z.string().regex(/^\s*-?\d+\s*$/)]).optional(),
    SeriesDescription: z.string().optional(),
  }),
  Instances: z.array(z.string()).optional(),
});

/** Options of {@link studyFromOrthanc}. */
export interface StudyFromOrthancOptions {
  /** Orthanc's DICOMweb root, for the ImagingStudy's Endpoint. */
  dicomWebUrl?: string;
  /** UTC offset of the study's DICOM date and time (DICOM has no zone). Default `+00:00`. */
  utcOffset?: string;
}

/**
 * Builds the analysis `study` input from Orthanc's study and series metadata.
 * @param study - `GET /studies/{id}`
 * @param series - `GET /series/{id}` of each series of the study (the SEG included, once stored)
 * @param options - DICOMweb root, UTC offset
 * @throws `ValidationError` (`@cdss/core`) when the metadata is not what Orthanc sends, or a series belongs elsewhere
 */
export function studyFromOrthanc(
  study: unknown,
  series: readonly unknown[],
  options: StudyFromOrthancOptions = {},
): AnalysisResultInput['study'] {
  const st = parseInput(orthancStudySchema, study, 'Orthanc study');
  const se = parseInput(z.array(orthancSeriesSchema).min(1), series, 'Orthanc series');
  const offset = parseInput(mapperOptionsSchema.shape.utcOffset, options.utcOffset, 'UTC offset');
  const tags = st.MainDicomTags;
  let started: string | undefined;
  if (tags.StudyDate) {
    const d = `${tags.StudyDate.slice(0, 4)}-${tags.StudyDate.slice(4, 6)}-${tags.StudyDate.slice(6, 8)}`;
    const t = tags.StudyTime;
    started =
      t && t.length >= 4
        ? `${d}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.length >= 6 ? t.slice(4, 6) : '00'}${offset}`
        : d;
  }
  return {
    studyInstanceUid: tags.StudyInstanceUID,
    ...(started ? { started } : {}),
    ...(tags.StudyDescription ? { description: tags.StudyDescription } : {}),
    ...(tags.AccessionNumber ? { accessionNumber: tags.AccessionNumber } : {}),
    ...(options.dicomWebUrl ? { dicomWebUrl: options.dicomWebUrl } : {}),
    series: se.map((s) => {
      const n = s.MainDicomTags.SeriesNumber;
      const number = n === undefined ? undefined : Number(n);
      return {
        seriesInstanceUid: s.MainDicomTags.SeriesInstanceUID,
        modality: s.MainDicomTags.Modality,
        ...(number !== undefined && number >= 0 ? { number } : {}),
        ...(s.MainDicomTags.SeriesDescription ? { description: s.MainDicomTags.SeriesDescription } : {}),
        ...(s.Instances ? { numberOfInstances: s.Instances.length } : {}),
      };
    }),
  };
}
