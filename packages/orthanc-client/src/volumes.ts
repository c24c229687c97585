/**
 * Series and studies from Orthanc as {@link Volume}s (via `@cdss/dicom`), and SEG storage.
 * @packageDocumentation
 */
import {
  readSeg,
  selectStudySeries,
  sliceFromPart10,
  SeriesVolumeAssembler,
  volumeFromSlices,
  buildStudyInput,
  DEFAULT_SELECTION_RULES,
  type SegReadResult,
  type SegSource,
  type SelectionRules,
  type StudyChannel,
  type SeriesCandidate,
  type StudyInput,
  type Volume,
  type VolumeFromSlicesOptions,
  type VolumeGeometry,
} from '@cdss/dicom';
import type { TransferProgress } from '@cdss/core';
import type { DicomWebClient } from './dicomweb.js';
import { CdssError } from '@cdss/core';
import { dicomNumbers, dicomString } from './dicom-json.js';
import type { DicomJsonDataset } from './schemas.js';

/** Options of {@link retrieveSeriesVolume}. */
export interface RetrieveVolumeOptions extends VolumeFromSlicesOptions {
  /** Cancels the download. */
  signal?: AbortSignal;
  /** Download progress. */
  onProgress?: (progress: TransferProgress) => void;
}

/**
 * Downloads a series over WADO-RS (one streamed multipart request) and builds its volume: each instance's pixel
 * bytes are copied from the socket's read buffer into staging memory as they arrive, then the slices are sorted
 * along the normal and checked for missing or uneven slices.
 *
 * With `pool`, the staging memory and the volume's memory come from (and the staging memory goes back to) the
 * pool: give each volume back with `pool.release(volume)` when done, and a service that downloads study after
 * study stops asking the system for fresh memory (see `VoxelBufferPool`).
 * @param dicomweb - the DICOMweb client
 * @param studyInstanceUid - the study
 * @param seriesInstanceUid - the series
 * @param options - volume options (`pool` among them), signal, progress
 * @returns the volume
 * @throws `DicomParseError` / `SeriesGeometryError` from `@cdss/dicom` for unreadable or irregular series
 */
export async function retrieveSeriesVolume(
  dicomweb: DicomWebClient,
  studyInstanceUid: string,
  seriesInstanceUid: string,
  options: RetrieveVolumeOptions = {},
): Promise<Volume> {
  const assembler = new SeriesVolumeAssembler(options.pool ? { pool: options.pool } : {});
  try {
    await dicomweb.retrieveSeriesInto(
      studyInstanceUid,
      seriesInstanceUid,
      (_headers, length) =>
        assembler.instance(length, `instance ${assembler.sliceCount} of series ${seriesInstanceUid}`),
      {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      },
    );
    return assembler.build(options);
  } finally {
    assembler.dispose();
  }
}

/** Options of {@link retrieveStudyInput}. */
export interface RetrieveStudyInputOptions extends RetrieveVolumeOptions {
  /** Series selection rules; default {@link DEFAULT_SELECTION_RULES}. */
  rules?: SelectionRules;
}

/**
 * Finds the T1c, T1, T2 and FLAIR series of a study without downloading them: QIDO-RS with the tags the selection
 * rules look at, then {@link selectStudySeries}.
 * @param dicomweb - the DICOMweb client
 * @param studyInstanceUid - the study
 * @param options - rules, signal
 * @returns the chosen series per channel
 * @throws `StudySeriesError` naming the missing channels
 */
export async function findStudySeries(
  dicomweb: DicomWebClient,
  studyInstanceUid: string,
  options: { rules?: SelectionRules; signal?: AbortSignal } = {},
): Promise<Record<StudyChannel, SeriesCandidate>> {
  const series = await dicomweb.searchForSeries(studyInstanceUid, {
    includefield: ['SeriesDescription', 'Modality', '00180010', '00180082', '00180020', '00180024'],
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const candidates: SeriesCandidate[] = series.map((s) => ({
    seriesInstanceUid: dicomString(s, 'SeriesInstanceUID') ?? '',
    description: dicomString(s, 'SeriesDescription') ?? '',
    modality: dicomString(s, 'Modality'),
    tags: {
      ContrastBolusAgent: dicomString(s, 'ContrastBolusAgent'),
      InversionTime: dicomString(s, 'InversionTime'),
      ScanningSequence: dicomString(s, 'ScanningSequence'),
      SequenceName: dicomString(s, 'SequenceName'),
    },
  }));
  return selectStudySeries(candidates, options.rules ?? DEFAULT_SELECTION_RULES);
}

/**
 * Finds the T1c, T1, T2 and FLAIR series of a study (QIDO-RS with the tags the rules look at), downloads the
 * four in parallel and stacks them as the model's 4-channel input.
 * @param dicomweb - the DICOMweb client
 * @param studyInstanceUid - the study
 * @param options - rules, signal, volume options
 * @returns the channels and the series each came from
 * @throws `StudySeriesError` naming the missing channels
 */
export async function retrieveStudyInput(
  dicomweb: DicomWebClient,
  studyInstanceUid: string,
  options: RetrieveStudyInputOptions = {},
): Promise<StudyInput> {
  const chosen = await findStudySeries(dicomweb, studyInstanceUid, options);
  const entries = await Promise.all(
    (['t1c', 't1', 't2', 'flair'] as const).map(async (c) => {
      const uid = chosen[c].seriesInstanceUid;
      return [
        c,
        { volume: await retrieveSeriesVolume(dicomweb, studyInstanceUid, uid, options), seriesInstanceUid: uid },
      ] as const;
    }),
  );
  return buildStudyInput(Object.fromEntries(entries) as Parameters<typeof buildStudyInput>[0]);
}

/**
 * Retrieves a SEG instance over WADO-RS and reads its label map onto a grid.
 * @param dicomweb - the DICOMweb client
 * @param studyInstanceUid - the study
 * @param seriesInstanceUid - the SEG's series
 * @param sopInstanceUid - the SEG instance
 * @param grid - the source series' grid (e.g. its volume)
 * @param options - signal
 */
export async function retrieveSeg(
  dicomweb: DicomWebClient,
  studyInstanceUid: string,
  seriesInstanceUid: string,
  sopInstanceUid: string,
  grid?: VolumeGeometry,
  options: { signal?: AbortSignal } = {},
): Promise<SegReadResult> {
  const file = await dicomweb.retrieveInstance(studyInstanceUid, seriesInstanceUid, sopInstanceUid, options);
  return readSeg(file, grid ? { grid } : {});
}

/**
 * What a DICOM SEG copies from and references in its source series (`SegSource` of `@cdss/dicom`), from the
 * series' WADO-RS metadata: no instance has to be downloaded for it. The SOP Instance UIDs are in grid order
 * (sorted along the slice normal, as the series' volume is), as `segSourceFromPart10` gives them from the files.
 * @param datasets - `retrieveSeriesMetadata` of the source series
 * @returns the SEG source
 * @throws {@link CdssError} `INVALID_METADATA` when an instance lacks its UID, position or orientation
 */
export function segSourceFromMetadata(datasets: readonly DicomJsonDataset[]): SegSource {
  const first = datasets[0];
  const iop = first ? dicomNumbers(first, 'ImageOrientationPatient') : undefined;
  if (!first || !iop || iop.length !== 6 || iop.some((v) => !Number.isFinite(v))) {
    throw new CdssError('series metadata has no instances with an ImageOrientationPatient', {
      code: 'INVALID_METADATA',
    });
  }
  const [r0, r1, r2, c0, c1, c2] = iop as [number, number, number, number, number, number];
  const normal = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0] as const;
  const slices = datasets.map((d, i) => {
    const uid = dicomString(d, 'SOPInstanceUID');
    const p = dicomNumbers(d, 'ImagePositionPatient');
    if (!uid || !p || p.length !== 3 || p.some((v) => !Number.isFinite(v))) {
      throw new CdssError(`instance ${i} of the series metadata lacks its SOPInstanceUID or ImagePositionPatient`, {
        code: 'INVALID_METADATA',
      });
    }
    return { uid, along: p[0]! * normal[0] + p[1]! * normal[1] + p[2]! * normal[2] };
  });
  slices.sort((a, b) => a.along - b.along);
  // As read from a file: '' for an attribute that is present but empty (DICOM JSON then has no Value), undefined
  // for one that is absent.
  const optional = (tag: string): string | undefined =>
    first[tag] === undefined ? undefined : (dicomString(first, tag) ?? '');
  return {
    patient: {
      id: dicomString(first, 'PatientID') ?? '',
      name: dicomString(first, 'PatientName') ?? '',
      birthDate: optional('00100030'),
      sex: optional('00100040'),
    },
    study: {
      instanceUid: dicomString(first, 'StudyInstanceUID') ?? '',
      id: optional('00200010'),
      date: optional('00080020'),
      time: optional('00080030'),
      accessionNumber: optional('00080050'),
      description: optional('00081030'),
      referringPhysicianName: optional('00080090'),
    },
    seriesInstanceUid: dicomString(first, 'SeriesInstanceUID') ?? '',
    frameOfReferenceUid: dicomString(first, '00200052') ?? '',
    sopClassUid: dicomString(first, 'SOPClassUID') ?? '',
    sopInstanceUids: slices.map((s) => s.uid),
  };
}

/**
 * Builds a series' volume over Orthanc's REST API: the instance files, `concurrency` at a time.
 * Use it where DICOMweb is not enabled; WADO-RS ({@link retrieveSeriesVolume}) is one request and faster.
 * @param orthanc - the client
 * @param seriesId - Orthanc series ID
 * @param options - volume options and signal
 */
export async function retrieveSeriesVolumeRest(
  orthanc: { getSeriesFiles(id: string, o: { signal?: AbortSignal }): Promise<Uint8Array[]> },
  seriesId: string,
  options: RetrieveVolumeOptions = {},
): Promise<Volume> {
  const files = await orthanc.getSeriesFiles(seriesId, options.signal ? { signal: options.signal } : {});
  return volumeFromSlices(
    files.map((f, i) => sliceFromPart10(f, `instance ${i} of series ${seriesId}`)),
    options,
  );
}
