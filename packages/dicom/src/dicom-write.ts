/**
 * Writing volumes as DICOM Part-10 MR Image series (dcmjs), with correct geometry and deterministic UIDs,
 * and the phantom study writer used by tests, benchmarks and the sandbox's demo data.
 *
 * Geometry (PS3.3 C.7.6.2): ImageOrientationPatient = the volume's i and j directions, ImagePositionPatient of
 * slice k = origin + k·spacing[2]·normal, PixelSpacing = [row spacing (j), column spacing (i)].
 * @packageDocumentation
 */
/// <reference path="./dcmjs.d.ts" />
import { createHash } from 'node:crypto';
import dcmjs from 'dcmjs';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import type { Phantom, PhantomModality } from './phantom.js';
import { assertVolume, indexToPatient, type Volume } from './volume.js';

/** SOP Class UID of MR Image Storage. */
export const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
const IMPLEMENTATION_CLASS_UID = '2.25.180934218712651216376402836428125469781';
const IMPLEMENTATION_VERSION = 'CDSS_IMAGING_1';

/**
 * A deterministic DICOM UID from a text (`2.25.` + 128 bits of SHA-256, PS3.5 B.2).
 * @param text - any text; the same text gives the same UID
 * @returns a UID of at most 44 characters
 */
export function uidFromSeed(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${hex}`).toString(10)}`;
}

/**
 * Formats a number as a DICOM decimal string (at most 16 characters, PS3.5 6.2).
 * @param v - a finite number
 * @returns the shortest faithful representation that fits
 */
export function formatDS(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`DS value must be finite, got ${v}`);
  const r = Math.abs(v) < 1e-10 ? 0 : v;
  let s = String(r);
  for (let p = 15; s.length > 16 && p > 1; p--) s = String(Number(r.toPrecision(p)));
  if (s.length > 16) s = r.toExponential(8);
  return s;
}

const uid = z
  .string()
  .regex(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/, 'a DICOM UID (digits and dots)')
  .max(64);
const lo = z.string().max(64);

/** zod schema of {@link SeriesWriteOptions}. */
export const seriesWriteOptionsSchema = z.object({
  patient: z.object({
    id: lo.min(1),
    name: z.string().max(64 * 5),
    birthDate: z
      .string()
      .regex(/^\d{8}$/)
      .optional(),
    sex: z.enum(['M', 'F', 'O']).optional(),
  }),
  study: z.object({
    instanceUid: uid,
    id: z.string().max(16).optional(),
    description: lo.optional(),
    date: z
      .string()
      .regex(/^\d{8}$/)
      .optional(),
    time: z
      .string()
      .regex(/^\d{6}(\.\d{1,6})?$/)
      .optional(),
    accessionNumber: z.string().max(16).optional(),
  }),
  series: z.object({
    instanceUid: uid,
    number: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    description: lo,
    frameOfReferenceUid: uid,
  }),
  mr: z
    .object({
      scanningSequence: z.array(z.enum(['SE', 'IR', 'GR', 'EP', 'RM'])).min(1),
      sequenceVariant: z.array(z.enum(['SK', 'MTC', 'SS', 'TRSS', 'SP', 'MP', 'OSP', 'NONE'])).min(1),
      acquisitionType: z.enum(['2D', '3D']),
      repetitionTime: z.number().positive(),
      echoTime: z.number().nonnegative(),
      inversionTime: z.number().positive().optional(),
      contrastAgent: lo.optional(),
      sequenceName: z.string().max(16).optional(),
    })
    .optional(),
  /** Prefix of the instance UIDs' seed; default the series UID. */
  uidSeed: z.string().optional(),
});

/** What to write around the voxels: patient, study, series and MR acquisition attributes. */
export type SeriesWriteOptions = z.input<typeof seriesWriteOptionsSchema>;

type WritableVolume = Volume<Uint16Array> | Volume<Int16Array> | Volume<Uint8Array>;

/**
 * Writes a volume as a single-frame MR Image Storage series in Explicit VR Little Endian: one Part-10 file per
 * slice `k`, InstanceNumber `k + 1`, SOP Instance UIDs derived from the series UID (so writing twice gives the
 * same files).
 * @param volume - 8- or 16-bit voxels (8-bit are written as 16-bit, as MR requires)
 * @param options - patient, study, series and MR attributes
 * @returns the files, slice 0 first
 * @throws {@link ValidationError} for bad options or a malformed volume
 */
export function writeDicomSeries(volume: WritableVolume, options: SeriesWriteOptions): Uint8Array[] {
  const parsed = seriesWriteOptionsSchema.safeParse(options);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid series options');
  assertVolume(volume);
  const o = parsed.data;
  const [nx, ny, nz] = volume.dims;
  const d = volume.direction;
  // MR Image Storage requires BitsAllocated 16 (PS3.3 C.8.3.1.1.4): 8-bit voxels are widened.
  const bits = 16;
  if (volume.data instanceof Uint8Array) volume = { ...volume, data: Uint16Array.from(volume.data) };
  const signed = volume.data instanceof Int16Array ? 1 : 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < volume.data.length; i++) {
    const v = volume.data[i] as number;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const date = o.study.date ?? '20260101';
  const time = o.study.time ?? '120000';
  const plane = nx * ny;
  const bytesPerVoxel = bits / 8;
  const src = new Uint8Array(volume.data.buffer, volume.data.byteOffset, volume.data.byteLength);
  const files: Uint8Array[] = [];
  const seed = o.uidSeed ?? o.series.instanceUid;
  const mr = o.mr ?? {
    scanningSequence: ['GR'],
    sequenceVariant: ['NONE'],
    acquisitionType: '3D',
    repetitionTime: 2000,
    echoTime: 10,
  };
  for (let k = 0; k < nz; k++) {
    const sop = uidFromSeed(`${seed}/instance/${k}`);
    const ipp = indexToPatient(volume, [0, 0, k]);
    const pixels = src.slice(k * plane * bytesPerVoxel, (k + 1) * plane * bytesPerVoxel).buffer;
    const ds: Record<string, unknown> = {
      SpecificCharacterSet: 'ISO_IR 192',
      ImageType: ['DERIVED', 'SECONDARY', 'OTHER'],
      SOPClassUID: MR_IMAGE_STORAGE,
      SOPInstanceUID: sop,
      StudyDate: date,
      SeriesDate: date,
      ContentDate: date,
      StudyTime: time,
      SeriesTime: time,
      ContentTime: time,
      AccessionNumber: o.study.accessionNumber ?? '',
      Modality: 'MR',
      PatientPosition: 'HFS',
      BodyPartExamined: 'BRAIN',
      Manufacturer: 'CDSS',
      ReferringPhysicianName: '',
      StudyDescription: o.study.description ?? '',
      SeriesDescription: o.series.description,
      ManufacturerModelName: 'CDSS synthetic phantom',
      PatientName: o.patient.name,
      PatientID: o.patient.id,
      PatientBirthDate: o.patient.birthDate ?? '',
      PatientSex: o.patient.sex ?? '',
      ScanningSequence: mr.scanningSequence,
      SequenceVariant: mr.sequenceVariant,
      ScanOptions: '',
      MRAcquisitionType: mr.acquisitionType,
      SequenceName: mr.sequenceName ?? '',
      SliceThickness: formatDS(volume.spacing[2]),
      RepetitionTime: formatDS(mr.repetitionTime),
      EchoTime: formatDS(mr.echoTime),
      EchoTrainLength: '1',
      SpacingBetweenSlices: formatDS(volume.spacing[2]),
      SoftwareVersions: '@cdss/dicom',
      StudyInstanceUID: o.study.instanceUid,
      SeriesInstanceUID: o.series.instanceUid,
      StudyID: o.study.id ?? '',
      SeriesNumber: String(o.series.number),
      InstanceNumber: String(k + 1),
      ImagePositionPatient: ipp.map(formatDS),
      ImageOrientationPatient: [d[0], d[1], d[2], d[3], d[4], d[5]].map(formatDS),
      FrameOfReferenceUID: o.series.frameOfReferenceUid,
      PositionReferenceIndicator: '',
      SliceLocation: formatDS(ipp[0] * d[6] + ipp[1] * d[7] + ipp[2] * d[8]),
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      Rows: ny,
      Columns: nx,
      PixelSpacing: [formatDS(volume.spacing[1]), formatDS(volume.spacing[0])],
      BitsAllocated: bits,
      BitsStored: bits,
      HighBit: bits - 1,
      PixelRepresentation: signed,
      WindowCenter: formatDS((min + max) / 2),
      WindowWidth: formatDS(Math.max(1, max - min)),
      PixelData: [pixels],
      _vrMap: { PixelData: 'OW' },
    };
    if (mr.inversionTime !== undefined) ds['InversionTime'] = formatDS(mr.inversionTime);
    if (mr.contrastAgent !== undefined) ds['ContrastBolusAgent'] = mr.contrastAgent;
    files.push(toPart10(ds, MR_IMAGE_STORAGE, sop));
  }
  return files;
}

/**
 * Serialises a naturalised dataset (dcmjs) as a Part-10 file in Explicit VR Little Endian.
 * @param dataset - naturalised attributes
 * @param sopClassUid - for the file meta information
 * @param sopInstanceUid - for the file meta information
 * @returns the file bytes
 */
export function toPart10(dataset: Record<string, unknown>, sopClassUid: string, sopInstanceUid: string): Uint8Array {
  const M = dcmjs.data.DicomMetaDictionary;
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION,
  };
  const dict = new dcmjs.data.DicomDict(M.denaturalizeDataset(meta));
  dict.dict = M.denaturalizeDataset(dataset);
  const out: ArrayBuffer = dict.write();
  return new Uint8Array(out);
}

/** MR acquisition attributes of each phantom contrast (typical 3 T brain protocol values). */
export const PHANTOM_SERIES: Record<
  PhantomModality,
  { number: number; description: string; mr: NonNullable<SeriesWriteOptions['mr']> }
> = {
  t1: {
    number: 1,
    description: 'T1 3D MPRAGE',
    mr: {
      scanningSequence: ['GR', 'IR'],
      sequenceVariant: ['SP', 'MP'],
      acquisitionType: '3D',
      repetitionTime: 2300,
      echoTime: 2.98,
      inversionTime: 900,
      sequenceName: 'tfl3d1',
    },
  },
  t1c: {
    number: 2,
    description: 'T1 3D MPRAGE post-contrast',
    mr: {
      scanningSequence: ['GR', 'IR'],
      sequenceVariant: ['SP', 'MP'],
      acquisitionType: '3D',
      repetitionTime: 2300,
      echoTime: 2.98,
      inversionTime: 900,
      contrastAgent: 'Gadobutrol',
      sequenceName: 'tfl3d1',
    },
  },
  t2: {
    number: 3,
    description: 'T2 TSE',
    mr: {
      scanningSequence: ['SE'],
      sequenceVariant: ['SK'],
      acquisitionType: '2D',
      repetitionTime: 5000,
      echoTime: 90,
      sequenceName: 'tse2d1',
    },
  },
  flair: {
    number: 4,
    description: 'T2 FLAIR',
    mr: {
      scanningSequence: ['SE', 'IR'],
      sequenceVariant: ['SK', 'SP'],
      acquisitionType: '2D',
      repetitionTime: 9000,
      echoTime: 81,
      inversionTime: 2500,
      sequenceName: 'tir2d1',
    },
  },
};

/** Options of {@link writePhantomStudy}. */
export interface PhantomStudyOptions {
  /** Patient ID (synthetic; give each test its own). */
  patientId: string;
  /** Patient name; default `SYNTHETIC^<patientId>`. */
  patientName?: string;
  /** Seed of all UIDs; default `phantom/<patientId>/<phantom seed>`. */
  uidSeed?: string;
  /** Study description; default `Synthetic brain MRI`. */
  studyDescription?: string;
  /** Accession number (≤ 16 characters). */
  accessionNumber?: string;
  /** StudyDate, YYYYMMDD (default 20260101): visits of one patient carry their real dates. */
  studyDate?: string;
  /** StudyTime, HHMMSS (default 120000). */
  studyTime?: string;
}

/** One written series of a phantom study. */
export interface WrittenSeries {
  /** Which contrast. */
  modality: PhantomModality;
  /** Series Instance UID. */
  seriesInstanceUid: string;
  /** Series Description. */
  description: string;
  /** Series Number. */
  number: number;
  /** Part-10 files, slice 0 first. */
  files: Uint8Array[];
}

/** What {@link writePhantomStudy} returns. */
export interface WrittenStudy {
  /** Patient ID. */
  patientId: string;
  /** Study Instance UID. */
  studyInstanceUid: string;
  /** Frame of Reference UID shared by the four series. */
  frameOfReferenceUid: string;
  /** The four series (T1, T1c, T2, FLAIR). */
  series: Record<PhantomModality, WrittenSeries>;
}

/**
 * Writes a phantom as a four-series MR study (T1, T1c with ContrastBolusAgent, T2, FLAIR with InversionTime)
 * sharing one Frame of Reference. UIDs are deterministic in `uidSeed`.
 * @param phantom - from {@link generatePhantom}
 * @param options - patient and UID seed
 * @returns the study's UIDs and files
 */
export function writePhantomStudy(phantom: Phantom, options: PhantomStudyOptions): WrittenStudy {
  const seed = options.uidSeed ?? `phantom/${options.patientId}/${String(phantom.seed)}`;
  const studyInstanceUid = uidFromSeed(`${seed}/study`);
  const frameOfReferenceUid = uidFromSeed(`${seed}/frame-of-reference`);
  const series = {} as Record<PhantomModality, WrittenSeries>;
  for (const m of ['t1', 't1c', 't2', 'flair'] as const) {
    const def = PHANTOM_SERIES[m];
    const seriesInstanceUid = uidFromSeed(`${seed}/series/${m}`);
    const files = writeDicomSeries(phantom.modalities[m], {
      patient: {
        id: options.patientId,
        name: options.patientName ?? `SYNTHETIC^${options.patientId}`,
        sex: 'O',
        birthDate: '19700101',
      },
      study: {
        instanceUid: studyInstanceUid,
        id: 'SYNTH',
        description: options.studyDescription ?? 'Synthetic brain MRI',
        ...(options.accessionNumber === undefined ? {} : { accessionNumber: options.accessionNumber }),
        ...(options.studyDate === undefined ? {} : { date: options.studyDate }),
        ...(options.studyTime === undefined ? {} : { time: options.studyTime }),
      },
      series: { instanceUid: seriesInstanceUid, number: def.number, description: def.description, frameOfReferenceUid },
      mr: def.mr,
    });
    series[m] = { modality: m, seriesInstanceUid, description: def.description, number: def.number, files };
  }
  return { patientId: options.patientId, studyInstanceUid, frameOfReferenceUid, series };
}
