/**
 * DICOM Segmentation (SEG) objects for BraTS label maps: writing a binary SEG on the source series' grid and
 * reading one back to a label map. Round trip is exact: `readSeg(writeSeg(labels, src), grid).labels` equals
 * `labels` voxel for voxel.
 *
 * One segment per BraTS sub-region (PS3.3 C.8.20.2): necrotic core, peritumoural oedema, enhancing tumour, with
 * SNOMED CT coded category/type (CID 7150/7151 style). One frame per (segment, slice) that has any voxel of
 * the segment; frames carry PlanePosition, SegmentIdentification and a DerivationImage reference to the
 * source slice. Dimensions are (ReferencedSegmentNumber, ImagePositionPatient). Pixels are BINARY, packed
 * LSB first without padding between frames (PS3.5 8.1.1).
 * @packageDocumentation
 */
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { DicomParseError } from './dicom-errors.js';
import {
  getBytes,
  getNumbers,
  getString,
  getUint16,
  parseDicom,
  type DicomDataset,
  type ParsedDicom,
} from './dicom-parse.js';
import { formatDS, toPart10, uidFromSeed } from './dicom-write.js';
import { sliceFromParsed } from './series-volume.js';
import { assertVolume, indexToPatient, type Mat3, type Vec3, type Volume, type VolumeGeometry } from './volume.js';

/** SOP Class UID of Segmentation Storage. */
export const SEGMENTATION_STORAGE = '1.2.840.10008.5.1.4.1.1.66.4';

/** A coded concept (PS3.3 Table 8.8-1). */
export interface CodedConcept {
  /** Code Value. */
  value: string;
  /** Coding Scheme Designator, e.g. `SCT`. */
  scheme: string;
  /** Code Meaning. */
  meaning: string;
}

/** How one label value is written as a segment. */
export interface SegmentDefinition {
  /** Label value in the label map. */
  labelValue: number;
  /** Segment Label. */
  label: string;
  /** Segmented Property Category. */
  category: CodedConcept;
  /** Segmented Property Type. */
  type: CodedConcept;
  /** Recommended display colour, CIELab scaled to 0..65535. */
  cielab?: [number, number, number];
}

const MORPH = { value: '49755003', scheme: 'SCT', meaning: 'Morphologically Altered Structure' };

/** The BraTS sub-regions as SEG segments (numbered 1, 2, 3 in this order). */
export const BRATS_SEGMENTS: readonly SegmentDefinition[] = [
  {
    labelValue: 1,
    label: 'NCR',
    category: MORPH,
    type: { value: '6574001', scheme: 'SCT', meaning: 'Necrosis' },
    cielab: [21758, 44029, 40217],
  },
  {
    labelValue: 2,
    label: 'ED',
    category: MORPH,
    type: { value: '79654002', scheme: 'SCT', meaning: 'Edema' },
    cielab: [58364, 28226, 49601],
  },
  {
    labelValue: 4,
    label: 'ET',
    category: MORPH,
    type: { value: '108369006', scheme: 'SCT', meaning: 'Neoplasm' },
    cielab: [43803, 50297, 25443],
  },
];

/** The source series a SEG is derived from: its patient/study and one SOP instance per slice of the grid. */
export interface SegSource {
  /** Patient attributes copied into the SEG. */
  patient: { id: string; name: string; birthDate?: string | undefined; sex?: string | undefined };
  /** Study attributes copied into the SEG (it joins the source study). */
  study: {
    instanceUid: string;
    id?: string | undefined;
    date?: string | undefined;
    time?: string | undefined;
    accessionNumber?: string | undefined;
    /** StudyDescription: copied so that every instance of the study agrees (dcentvfy). */
    description?: string | undefined;
    /** ReferringPhysicianName: copied so that every instance of the study agrees (dcentvfy). */
    referringPhysicianName?: string | undefined;
  };
  /** Source series. */
  seriesInstanceUid: string;
  /** Frame of Reference UID of the source series. */
  frameOfReferenceUid: string;
  /** SOP Class UID of the source images. */
  sopClassUid: string;
  /** SOP Instance UID of source slice k, for each k of the grid. */
  sopInstanceUids: readonly string[];
}

const algorithmSchema = z.object({
  type: z.enum(['MANUAL', 'AUTOMATIC', 'SEMIAUTOMATIC']),
  name: z.string().min(1).max(64).optional(),
  version: z.string().min(1).max(64).optional(),
  family: z.custom<CodedConcept>().optional(),
});

/** zod schema of {@link SegWriteOptions}. */
export const segWriteOptionsSchema = z.object({
  seriesInstanceUid: z.string().max(64).optional(),
  sopInstanceUid: z.string().max(64).optional(),
  seriesNumber: z.number().int().min(0).optional(),
  seriesDescription: z.string().max(64).optional(),
  contentLabel: z
    .string()
    .regex(/^[A-Z0-9_ ]{1,16}$/, 'upper-case CS, at most 16 characters')
    .optional(),
  algorithm: algorithmSchema.optional(),
  uidSeed: z.string().optional(),
  contentDate: z
    .string()
    .regex(/^\d{8}$/)
    .optional(),
  contentTime: z
    .string()
    .regex(/^\d{6}$/)
    .optional(),
});

/** Options of {@link writeSeg}. */
export interface SegWriteOptions {
  /** Series Instance UID of the SEG; default derived from `uidSeed`. */
  seriesInstanceUid?: string;
  /** SOP Instance UID of the SEG; default derived from `uidSeed`. */
  sopInstanceUid?: string;
  /** Series Number; default 100. */
  seriesNumber?: number;
  /** Series Description; default `Tumour segmentation`. */
  seriesDescription?: string;
  /** Content Label (CS); default `TUMOUR`. */
  contentLabel?: string;
  /** Who made it: default MANUAL (ground truth); a model's output is AUTOMATIC with a name and version. */
  algorithm?: {
    type: 'MANUAL' | 'AUTOMATIC' | 'SEMIAUTOMATIC';
    name?: string;
    version?: string;
    family?: CodedConcept;
  };
  /** Seed of the default UIDs; default derived from the source series and the label map's content. */
  uidSeed?: string;
  /** Content Date (YYYYMMDD); default 20260101 so output is reproducible. */
  contentDate?: string;
  /** Content Time (HHMMSS). */
  contentTime?: string;
  /** Segments to write; default {@link BRATS_SEGMENTS}. */
  segments?: readonly SegmentDefinition[];
}

function code(c: CodedConcept): Record<string, string> {
  return { CodeValue: c.value, CodingSchemeDesignator: c.scheme, CodeMeaning: c.meaning };
}

/**
 * Writes a label map as a binary DICOM SEG on the grid of its source series.
 * @param labels - label map on the source grid (k = source slice index)
 * @param source - patient, study and per-slice SOP instances of the source series
 * @param options - UIDs, algorithm, segments
 * @returns the Part-10 SEG file
 * @throws {@link ValidationError} for bad options, a label value with no segment, or a source that does not match the grid
 */
export function writeSeg(labels: Volume<Uint8Array>, source: SegSource, options: SegWriteOptions = {}): Uint8Array {
  const parsed = segWriteOptionsSchema.safeParse(options);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid SEG options');
  assertVolume(labels);
  const [nx, ny, nz] = labels.dims;
  if (source.sopInstanceUids.length !== nz) {
    throw new ValidationError(
      `SEG source does not match the label grid (${source.sopInstanceUids.length} source slices, ${nz} label slices)`,
      [
        {
          path: 'source.sopInstanceUids',
          message: `${source.sopInstanceUids.length} source slices for ${nz} label slices`,
          code: 'length_mismatch',
        },
      ],
    );
  }
  const segments = options.segments ?? BRATS_SEGMENTS;
  const byValue = new Map<number, number>();
  segments.forEach((s, idx) => byValue.set(s.labelValue, idx));
  const plane = nx * ny;
  // frames[segIdx] = slices with any voxel of that segment
  const present = segments.map(() => new Uint8Array(nz));
  for (let k = 0; k < nz; k++) {
    for (let p = k * plane, end = p + plane; p < end; p++) {
      const v = labels.data[p] as number;
      if (v === 0) continue;
      const s = byValue.get(v);
      if (s === undefined) {
        throw new ValidationError(`Label map has a value with no segment: label value ${v} has no segment definition`, [
          {
            path: 'labels.data',
            message: `label value ${v} has no segment definition (known: ${[...byValue.keys()].join(', ')})`,
            code: 'unknown_label',
          },
        ]);
      }
      (present[s] as Uint8Array)[k] = 1;
    }
  }
  const frames: Array<{ seg: number; k: number }> = [];
  segments.forEach((_, s) => {
    for (let k = 0; k < nz; k++) if ((present[s] as Uint8Array)[k]) frames.push({ seg: s, k });
  });
  // An empty label map still needs one frame (NumberOfFrames ≥ 1): an empty frame of the first segment.
  if (frames.length === 0) frames.push({ seg: 0, k: 0 });
  const totalBits = frames.length * plane;
  const packed = new Uint8Array(Math.ceil(totalBits / 8) + (Math.ceil(totalBits / 8) % 2));
  frames.forEach(({ seg, k }, f) => {
    const want = (segments[seg] as SegmentDefinition).labelValue;
    const base = f * plane;
    const src = k * plane;
    for (let p = 0; p < plane; p++) {
      if (labels.data[src + p] === want) {
        const bit = base + p;
        packed[bit >> 3] = (packed[bit >> 3] as number) | (1 << (bit & 7));
      }
    }
  });

  const seed =
    options.uidSeed ??
    `${source.seriesInstanceUid}/seg/${uidFromSeed(Buffer.from(labels.data.buffer, labels.data.byteOffset, labels.data.byteLength).toString('base64'))}`;
  const seriesUid = options.seriesInstanceUid ?? uidFromSeed(`${seed}/series`);
  const sopUid = options.sopInstanceUid ?? uidFromSeed(`${seed}/instance`);
  const dimOrgUid = uidFromSeed(`${seed}/dimension-organization`);
  const algorithm = options.algorithm ?? { type: 'MANUAL' as const };
  const d = labels.direction;
  const date = options.contentDate ?? '20260101';
  const time = options.contentTime ?? '120000';
  const ds: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    ImageType: ['DERIVED', 'PRIMARY'],
    SOPClassUID: SEGMENTATION_STORAGE,
    SOPInstanceUID: sopUid,
    StudyDate: source.study.date ?? date,
    SeriesDate: date,
    ContentDate: date,
    StudyTime: source.study.time ?? time,
    SeriesTime: time,
    ContentTime: time,
    AccessionNumber: source.study.accessionNumber ?? '',
    Modality: 'SEG',
    Manufacturer: 'CDSS',
    ReferringPhysicianName: source.study.referringPhysicianName ?? '',
    ...(source.study.description !== undefined ? { StudyDescription: source.study.description } : {}),
    SeriesDescription: options.seriesDescription ?? 'Tumour segmentation',
    ManufacturerModelName: '@cdss/dicom',
    ReferencedSeriesSequence: [
      {
        SeriesInstanceUID: source.seriesInstanceUid,
        ReferencedInstanceSequence: [...new Set(frames.map((f) => f.k))]
          .sort((a, b) => a - b)
          .map((k) => ({
            ReferencedSOPClassUID: source.sopClassUid,
            ReferencedSOPInstanceUID: source.sopInstanceUids[k],
          })),
      },
    ],
    PatientName: source.patient.name,
    PatientID: source.patient.id,
    PatientBirthDate: source.patient.birthDate ?? '',
    PatientSex: source.patient.sex ?? '',
    DeviceSerialNumber: '0',
    SoftwareVersions: '1',
    StudyInstanceUID: source.study.instanceUid,
    SeriesInstanceUID: seriesUid,
    StudyID: source.study.id ?? '',
    SeriesNumber: String(options.seriesNumber ?? 100),
    InstanceNumber: '1',
    FrameOfReferenceUID: source.frameOfReferenceUid,
    PositionReferenceIndicator: '',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: dimOrgUid }],
    DimensionOrganizationType: '3D',
    DimensionIndexSequence: [
      {
        DimensionOrganizationUID: dimOrgUid,
        DimensionIndexPointer: 0x0062000b,
        FunctionalGroupPointer: 0x0062000a,
        DimensionDescriptionLabel: 'ReferencedSegmentNumber',
      },
      {
        DimensionOrganizationUID: dimOrgUid,
        DimensionIndexPointer: 0x00200032,
        FunctionalGroupPointer: 0x00209113,
        DimensionDescriptionLabel: 'ImagePositionPatient',
      },
    ],
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: String(frames.length),
    Rows: ny,
    Columns: nx,
    BitsAllocated: 1,
    BitsStored: 1,
    HighBit: 0,
    PixelRepresentation: 0,
    LossyImageCompression: '00',
    SegmentationType: 'BINARY',
    ContentLabel: options.contentLabel ?? 'TUMOUR',
    ContentDescription: 'BraTS tumour sub-regions',
    ContentCreatorName: '',
    SegmentSequence: segments.map((s, idx) => {
      const item: Record<string, unknown> = {
        SegmentedPropertyCategoryCodeSequence: [code(s.category)],
        SegmentNumber: idx + 1,
        SegmentLabel: s.label,
        SegmentAlgorithmType: algorithm.type,
        SegmentedPropertyTypeCodeSequence: [code(s.type)],
      };
      if (s.cielab) item['RecommendedDisplayCIELabValue'] = s.cielab;
      if (algorithm.type !== 'MANUAL') {
        item['SegmentAlgorithmName'] = algorithm.name ?? 'unnamed';
        item['SegmentationAlgorithmIdentificationSequence'] = [
          {
            AlgorithmFamilyCodeSequence: [
              code(algorithm.family ?? { value: '123110', scheme: 'DCM', meaning: 'Artificial Intelligence' }),
            ],
            AlgorithmName: algorithm.name ?? 'unnamed',
            AlgorithmVersion: algorithm.version ?? '0',
          },
        ];
      }
      return item;
    }),
    SharedFunctionalGroupsSequence: [
      {
        PlaneOrientationSequence: [{ ImageOrientationPatient: [d[0], d[1], d[2], d[3], d[4], d[5]].map(formatDS) }],
        PixelMeasuresSequence: [
          {
            SliceThickness: formatDS(labels.spacing[2]),
            SpacingBetweenSlices: formatDS(labels.spacing[2]),
            PixelSpacing: [formatDS(labels.spacing[1]), formatDS(labels.spacing[0])],
          },
        ],
      },
    ],
    PerFrameFunctionalGroupsSequence: frames.map(({ seg, k }) => ({
      DerivationImageSequence: [
        {
          SourceImageSequence: [
            {
              ReferencedSOPClassUID: source.sopClassUid,
              ReferencedSOPInstanceUID: source.sopInstanceUids[k],
              PurposeOfReferenceCodeSequence: [
                {
                  CodeValue: '121322',
                  CodingSchemeDesignator: 'DCM',
                  CodeMeaning: 'Source image for image processing operation',
                },
              ],
            },
          ],
          DerivationCodeSequence: [{ CodeValue: '113076', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Segmentation' }],
        },
      ],
      FrameContentSequence: [{ DimensionIndexValues: [seg + 1, k + 1] }],
      PlanePositionSequence: [{ ImagePositionPatient: indexToPatient(labels, [0, 0, k]).map(formatDS) }],
      SegmentIdentificationSequence: [{ ReferencedSegmentNumber: seg + 1 }],
    })),
    PixelData: [packed.buffer],
    _vrMap: { PixelData: 'OB' },
  };
  return toPart10(ds, SEGMENTATION_STORAGE, sopUid);
}

/** One segment as read from a SEG. */
export interface SegSegment {
  /** Segment Number. */
  number: number;
  /** Segment Label. */
  label: string;
  /** Segmented Property Type, when coded. */
  type?: CodedConcept | undefined;
  /** Label value written for this segment in the label map. */
  labelValue: number;
  /** Segment Algorithm Type. */
  algorithmType?: string | undefined;
}

/** What {@link readSeg} returns. */
export interface SegReadResult {
  /** The label map on the grid. */
  labels: Volume<Uint8Array>;
  /** The segments and the label value each became. */
  segments: SegSegment[];
  /** Series Instance UID of the source series (ReferencedSeriesSequence), when given. */
  referencedSeriesInstanceUid?: string | undefined;
  /** The SEG's own UIDs. */
  sopInstanceUid: string;
  /** The SEG's Series Instance UID. */
  seriesInstanceUid: string;
}

/** Options of {@link readSeg}. */
export interface SegReadOptions {
  /** The grid to place frames on (the source series' volume). Default: the grid the frames span. */
  grid?: VolumeGeometry;
  /** Label value of a segment; default by SNOMED type (necrosis 1, oedema 2, neoplasm 4), else by label NCR/ED/ET, else the segment number. */
  labelOf?: (segment: Omit<SegSegment, 'labelValue'>) => number;
}

const S = {
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  SeriesInstanceUID: 0x0020000e,
  ReferencedSeriesSequence: 0x00081115,
  Rows: 0x00280010,
  Columns: 0x00280011,
  NumberOfFrames: 0x00280008,
  BitsAllocated: 0x00280100,
  SegmentationType: 0x00620001,
  SegmentSequence: 0x00620002,
  SegmentNumber: 0x00620004,
  SegmentLabel: 0x00620005,
  SegmentAlgorithmType: 0x00620008,
  SegmentedPropertyTypeCodeSequence: 0x0062000f,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodeMeaning: 0x00080104,
  Shared: 0x52009229,
  PerFrame: 0x52009230,
  PlanePositionSequence: 0x00209113,
  ImagePositionPatient: 0x00200032,
  PlaneOrientationSequence: 0x00209116,
  ImageOrientationPatient: 0x00200037,
  PixelMeasuresSequence: 0x00289110,
  PixelSpacing: 0x00280030,
  SpacingBetweenSlices: 0x00180088,
  SliceThickness: 0x00180050,
  SegmentIdentificationSequence: 0x0062000a,
  ReferencedSegmentNumber: 0x0062000b,
  PixelData: 0x7fe00010,
} as const;

function defaultLabelOf(s: Omit<SegSegment, 'labelValue'>): number {
  const byCode: Record<string, number> = { '6574001': 1, '79654002': 2, '108369006': 4 };
  if (s.type?.scheme === 'SCT' && byCode[s.type.value] !== undefined) return byCode[s.type.value] as number;
  const byLabel: Record<string, number> = { NCR: 1, ED: 2, ET: 4 };
  return byLabel[s.label.toUpperCase()] ?? s.number;
}

function first(ds: DicomDataset | undefined, tag: number): DicomDataset | undefined {
  return ds?.get(tag)?.items?.[0];
}

/**
 * Reads a binary DICOM SEG into a label map.
 * @param bytes - the Part-10 SEG file
 * @param options - target grid and segment → label mapping
 * @returns the label map and segment descriptions
 * @throws {@link DicomParseError} when the file is not a readable binary SEG or a frame lies off the grid
 */
export function readSeg(bytes: Uint8Array, options: SegReadOptions = {}): SegReadResult {
  const file: ParsedDicom = parseDicom(bytes, { source: 'SEG' });
  const ds = file.dataset;
  const fail = (message: string): never => {
    throw new DicomParseError(message, { source: 'SEG' });
  };
  const str = (d: DicomDataset | undefined, tag: number): string | undefined =>
    d ? getString(file, d.get(tag)) : undefined;
  const nums = (d: DicomDataset | undefined, tag: number, what: string): number[] | undefined => {
    try {
      return d ? getNumbers(file, d.get(tag), what) : undefined;
    } catch (error) {
      return fail(error instanceof Error ? error.message : String(error));
    }
  };
  if (str(ds, S.SOPClassUID) !== SEGMENTATION_STORAGE)
    fail(`not a Segmentation Storage object (SOP Class ${str(ds, S.SOPClassUID) ?? 'missing'})`);
  const type = str(ds, S.SegmentationType);
  if (type !== 'BINARY') fail(`SegmentationType ${type ?? 'missing'} is not supported (only BINARY)`);
  if (getUint16(file, ds.get(S.BitsAllocated)) !== 1) fail('BINARY SEG must have BitsAllocated 1');
  const rows = getUint16(file, ds.get(S.Rows)) ?? fail('missing Rows');
  const columns = getUint16(file, ds.get(S.Columns)) ?? fail('missing Columns');
  const nFrames = nums(ds, S.NumberOfFrames, 'NumberOfFrames')?.[0] ?? fail('missing NumberOfFrames');
  if (!Number.isInteger(nFrames) || nFrames < 1) fail(`NumberOfFrames ${nFrames} is invalid`);
  const plane = rows * columns;
  const pixels = getBytes(file, ds.get(S.PixelData)) ?? fail('missing PixelData');
  if (pixels.length * 8 < nFrames * plane)
    fail(`PixelData has ${pixels.length} bytes, expected ${Math.ceil((nFrames * plane) / 8)} for ${nFrames} frames`);

  const segItems = ds.get(S.SegmentSequence)?.items ?? fail('missing SegmentSequence');
  const labelOf = options.labelOf ?? defaultLabelOf;
  const segments: SegSegment[] = segItems.map((item) => {
    const number = getUint16(file, item.get(S.SegmentNumber)) ?? fail('segment without SegmentNumber');
    const t = first(item, S.SegmentedPropertyTypeCodeSequence);
    const typeCode = t
      ? {
          value: str(t, S.CodeValue) ?? '',
          scheme: str(t, S.CodingSchemeDesignator) ?? '',
          meaning: str(t, S.CodeMeaning) ?? '',
        }
      : undefined;
    const base = {
      number,
      label: str(item, S.SegmentLabel) ?? '',
      type: typeCode,
      algorithmType: str(item, S.SegmentAlgorithmType),
    };
    const labelValue = labelOf(base);
    if (!Number.isInteger(labelValue) || labelValue < 1 || labelValue > 255)
      fail(`segment ${number} maps to label value ${labelValue}, not 1..255`);
    return { ...base, labelValue };
  });
  const segValue = new Map(segments.map((s) => [s.number, s.labelValue]));

  const shared = first(ds, S.Shared);
  const perFrame = ds.get(S.PerFrame)?.items ?? fail('missing PerFrameFunctionalGroupsSequence');
  if (perFrame.length !== nFrames)
    fail(`PerFrameFunctionalGroupsSequence has ${perFrame.length} items for ${nFrames} frames`);
  const frameInfo = perFrame.map((item, f) => {
    const pos = nums(first(item, S.PlanePositionSequence), S.ImagePositionPatient, 'ImagePositionPatient');
    const seg = getUint16(file, first(item, S.SegmentIdentificationSequence)?.get(S.ReferencedSegmentNumber));
    if (!pos || pos.length !== 3) return fail(`frame ${f + 1} has no ImagePositionPatient`);
    if (seg === undefined || !segValue.has(seg))
      return fail(`frame ${f + 1} references unknown segment ${seg ?? '(none)'}`);
    return { pos: pos as Vec3, seg };
  });
  const orient =
    nums(
      first(first(perFrame[0], S.PlaneOrientationSequence) ? perFrame[0] : shared, S.PlaneOrientationSequence),
      S.ImageOrientationPatient,
      'ImageOrientationPatient',
    ) ?? fail('missing ImageOrientationPatient');
  const measures = first(first(perFrame[0], S.PixelMeasuresSequence) ? perFrame[0] : shared, S.PixelMeasuresSequence);
  const ps = nums(measures, S.PixelSpacing, 'PixelSpacing') ?? fail('missing PixelSpacing');
  if (orient.length !== 6 || ps.length !== 2) fail('malformed ImageOrientationPatient or PixelSpacing');
  const rowDir: Vec3 = [orient[0]!, orient[1]!, orient[2]!];
  const colDir: Vec3 = [orient[3]!, orient[4]!, orient[5]!];
  const normal: Vec3 = [
    rowDir[1] * colDir[2] - rowDir[2] * colDir[1],
    rowDir[2] * colDir[0] - rowDir[0] * colDir[2],
    rowDir[0] * colDir[1] - rowDir[1] * colDir[0],
  ];
  let grid: VolumeGeometry;
  if (options.grid) {
    grid = options.grid;
    if (grid.dims[0] !== columns || grid.dims[1] !== rows)
      fail(`SEG frames are ${columns}×${rows}, the grid is ${grid.dims[0]}×${grid.dims[1]}`);
    const g = grid.direction;
    if ([...rowDir, ...colDir].some((v, n) => Math.abs(v - (g[n] as number)) > 1e-4))
      fail('SEG orientation differs from the grid');
  } else {
    const dots = frameInfo.map((f) => f.pos[0] * normal[0] + f.pos[1] * normal[1] + f.pos[2] * normal[2]);
    const min = Math.min(...dots);
    const max = Math.max(...dots);
    const step =
      nums(measures, S.SpacingBetweenSlices, 'SpacingBetweenSlices')?.[0] ??
      nums(measures, S.SliceThickness, 'SliceThickness')?.[0] ??
      1;
    const at = frameInfo[dots.indexOf(min)]!.pos;
    grid = {
      dims: [columns, rows, Math.round((max - min) / step) + 1],
      spacing: [ps[1]!, ps[0]!, step],
      origin: [...at],
      direction: [...rowDir, ...colDir, ...normal] as Mat3,
    };
  }
  const [nx, ny, nz] = grid.dims;
  const out = new Uint8Array(nx * ny * nz);
  const g = grid;
  frameInfo.forEach(({ pos, seg }, f) => {
    const rel: Vec3 = [pos[0] - g.origin[0], pos[1] - g.origin[1], pos[2] - g.origin[2]];
    const dz = g.direction;
    const along = (c: number): number =>
      (rel[0] * (dz[c * 3] as number) + rel[1] * (dz[c * 3 + 1] as number) + rel[2] * (dz[c * 3 + 2] as number)) /
      g.spacing[c as 0];
    const i = along(0);
    const j = along(1);
    const kf = along(2);
    const k = Math.round(kf);
    if (Math.abs(i) > 1e-2 || Math.abs(j) > 1e-2 || Math.abs(kf - k) > 1e-2 || k < 0 || k >= nz) {
      fail(`frame ${f + 1} at (${pos.map((v) => v.toFixed(2)).join(', ')}) is not a slice of the grid`);
    }
    const value = segValue.get(seg) as number;
    const base = f * plane;
    const dst = k * plane;
    for (let p = 0; p < plane; p++) {
      const bit = base + p;
      if (((pixels[bit >> 3] as number) >> (bit & 7)) & 1) out[dst + p] = value;
    }
  });
  const refSeries = first(ds, S.ReferencedSeriesSequence);
  return {
    labels: {
      dims: [nx, ny, nz],
      spacing: [...g.spacing],
      origin: [...g.origin],
      direction: [...g.direction],
      data: out,
    },
    segments,
    referencedSeriesInstanceUid: str(refSeries, S.SeriesInstanceUID),
    sopInstanceUid: str(ds, S.SOPInstanceUID) ?? '',
    seriesInstanceUid: str(ds, S.SeriesInstanceUID) ?? '',
  };
}

/**
 * Reads what a SEG needs from its source series' Part-10 files: patient, study, and each slice's SOP Instance
 * UID in grid order (sorted along the slice normal, as {@link volumeFromSlices} orders them).
 * @param files - the source series' files, any order
 * @returns the SEG source
 * @throws {@link DicomParseError} for unreadable files
 */
export function segSourceFromPart10(files: readonly Uint8Array[]): SegSource {
  if (files.length === 0) throw new DicomParseError('no source files');
  const parsed = files.map((f, idx) => {
    const file = parseDicom(f, { source: `file ${idx}` });
    return { file, slice: sliceFromParsed(file, `file ${idx}`) };
  });
  const iop = parsed[0]!.slice.imageOrientationPatient;
  const n: Vec3 = [
    iop[1] * iop[5] - iop[2] * iop[4],
    iop[2] * iop[3] - iop[0] * iop[5],
    iop[0] * iop[4] - iop[1] * iop[3],
  ];
  parsed.sort((a, b) => {
    const pa = a.slice.imagePositionPatient;
    const pb = b.slice.imagePositionPatient;
    return pa[0] * n[0] + pa[1] * n[1] + pa[2] * n[2] - (pb[0] * n[0] + pb[1] * n[1] + pb[2] * n[2]);
  });
  const f0 = parsed[0]!.file;
  const get = (tag: number): string | undefined => getString(f0, f0.dataset.get(tag));
  return {
    patient: {
      id: get(0x00100020) ?? '',
      name: get(0x00100010) ?? '',
      birthDate: get(0x00100030),
      sex: get(0x00100040),
    },
    study: {
      instanceUid: get(0x0020000d) ?? '',
      id: get(0x00200010),
      date: get(0x00080020),
      time: get(0x00080030),
      accessionNumber: get(0x00080050),
      description: get(0x00081030),
      referringPhysicianName: get(0x00080090),
    },
    seriesInstanceUid: parsed[0]!.slice.seriesInstanceUid,
    frameOfReferenceUid: parsed[0]!.slice.frameOfReferenceUid ?? '',
    sopClassUid: get(0x00080016) ?? '',
    sopInstanceUids: parsed.map((p) => p.slice.sopInstanceUid),
  };
}
