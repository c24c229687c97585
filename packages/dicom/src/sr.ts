/**
 * DICOM Structured Report of a segmentation's measurements: an Enhanced SR holding TID 1500 "Measurement Report"
 * (PS3.16), as dcmqi and 3D Slicer write it, so that a PACS or a viewer (OHIF, Slicer) reads the numbers next to the
 * SEG. Per SEG segment a TID 1411 volumetric ROI group (volume, referencing the segment and the source series); per
 * enhancing lesion a TID 1411 group with its volume and the RANO diameters (long axis, short axis: the longest
 * diameter and the longest perpendicular to it on one axial slice); tumour core and whole tumour, which are unions of
 * segments, as TID 1501 groups.
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';
import { z } from 'zod';
import { formatDS, toPart10, uidFromSeed } from './dicom-write.js';
import { SEGMENTATION_STORAGE, type CodedConcept, type SegSource } from './seg.js';

/** SOP Class UID of Enhanced SR Storage. */
export const ENHANCED_SR_STORAGE = '1.2.840.10008.5.1.4.1.1.88.22';

const num = z.number().finite().nonnegative();
const uid = z
  .string()
  .regex(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/)
  .max(64);

/** zod schema of {@link MeasurementReportInput}. */
export const measurementReportSchema = z.object({
  /** The SEG the measurements are of. */
  seg: z.object({ seriesInstanceUid: uid, sopInstanceUid: uid }),
  /** Volumes of the SEG's segments, by segment number (1-based), mL. */
  segments: z.array(
    z.object({
      number: z.int().min(1),
      label: z.string().min(1).max(64),
      type: z.custom<CodedConcept>(),
      volumeMl: num,
    }),
  ),
  /** Unions of segments (tumour core, whole tumour), mL. */
  regions: z.array(z.object({ label: z.string().min(1).max(64), type: z.custom<CodedConcept>(), volumeMl: num })),
  /** Enhancing lesions, largest first; they reference segment `lesionSegmentNumber`. */
  lesions: z.array(
    z.object({ volumeMl: num, longestDiameterMm: num, perpendicularDiameterMm: num, measurable: z.boolean() }),
  ),
  lesionSegmentNumber: z.int().min(1),
  /** The algorithm that made the SEG (the device observer). */
  algorithm: z.object({ name: z.string().min(1).max(64), version: z.string().min(1).max(64) }),
  seriesInstanceUid: uid.optional(),
  sopInstanceUid: uid.optional(),
  seriesNumber: z.int().min(0).default(101),
  seriesDescription: z.string().max(64).default('Tumour measurements'),
  /** YYYYMMDD / HHMMSS; default 20260101 120000 so output is reproducible. */
  contentDate: z
    .string()
    .regex(/^\d{8}$/)
    .default('20260101'),
  contentTime: z
    .string()
    .regex(/^\d{6}$/)
    .default('120000'),
});

/** What the report says. */
export type MeasurementReportInput = z.input<typeof measurementReportSchema>;

const dcm = (value: string, meaning: string): CodedConcept => ({ value, scheme: 'DCM', meaning });
const sct = (value: string, meaning: string): CodedConcept => ({ value, scheme: 'SCT', meaning });
const code = (c: CodedConcept): Record<string, string> => ({
  CodeValue: c.value,
  CodingSchemeDesignator: c.scheme,
  CodeMeaning: c.meaning,
});

const UNITS = {
  ml: { value: 'ml', scheme: 'UCUM', meaning: 'milliliter' },
  mm: { value: 'mm', scheme: 'UCUM', meaning: 'millimeter' },
  mm2: { value: 'mm2', scheme: 'UCUM', meaning: 'square millimeter' },
} as const;

type Item = Record<string, unknown>;

const container = (rel: string | undefined, name: CodedConcept, children: Item[], template?: string): Item => ({
  ...(rel ? { RelationshipType: rel } : {}),
  ValueType: 'CONTAINER',
  ConceptNameCodeSequence: [code(name)],
  ContinuityOfContent: 'SEPARATE',
  ...(template ? { ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: template }] } : {}),
  ContentSequence: children,
});
const codeItem = (rel: string, name: CodedConcept, value: CodedConcept): Item => ({
  RelationshipType: rel,
  ValueType: 'CODE',
  ConceptNameCodeSequence: [code(name)],
  ConceptCodeSequence: [code(value)],
});
const text = (rel: string, name: CodedConcept, value: string): Item => ({
  RelationshipType: rel,
  ValueType: 'TEXT',
  ConceptNameCodeSequence: [code(name)],
  TextValue: value,
});
const uidItem = (rel: string, name: CodedConcept, value: string): Item => ({
  RelationshipType: rel,
  ValueType: 'UIDREF',
  ConceptNameCodeSequence: [code(name)],
  UID: value,
});
const numItem = (name: CodedConcept, value: number, unit: CodedConcept, digits: number): Item => ({
  RelationshipType: 'CONTAINS',
  ValueType: 'NUM',
  ConceptNameCodeSequence: [code(name)],
  MeasuredValueSequence: [
    { MeasurementUnitsCodeSequence: [code(unit)], NumericValue: formatDS(Number(value.toFixed(digits))) },
  ],
});

const C = {
  report: dcm('126000', 'Imaging Measurement Report'),
  language: dcm('121049', 'Language of Content Item and Descendants'),
  english: { value: 'eng', scheme: 'RFC5646', meaning: 'English' },
  observerType: dcm('121005', 'Observer Type'),
  device: dcm('121007', 'Device'),
  deviceUid: dcm('121012', 'Device Observer UID'),
  deviceName: dcm('121013', 'Device Observer Name'),
  deviceModel: dcm('121015', 'Device Observer Model Name'),
  procedure: dcm('121058', 'Procedure reported'),
  mri: sct('113091000', 'Magnetic resonance imaging'),
  library: dcm('111028', 'Image Library'),
  libraryGroup: dcm('126200', 'Image Library Group'),
  measurements: dcm('126010', 'Imaging Measurements'),
  group: dcm('125007', 'Measurement Group'),
  trackingId: dcm('112039', 'Tracking Identifier'),
  trackingUid: dcm('112040', 'Tracking Unique Identifier'),
  segment: dcm('121191', 'Referenced Segment'),
  sourceSeries: dcm('121232', 'Source series for segmentation'),
  finding: dcm('121071', 'Finding'),
  findingSite: sct('363698007', 'Finding Site'),
  brain: sct('12738006', 'Brain'),
  volume: sct('118565006', 'Volume'),
  longAxis: sct('103339001', 'Long Axis'),
  shortAxis: sct('103340004', 'Short Axis'),
  enhancing: sct('108369006', 'Neoplasm'),
  modality: dcm('121139', 'Modality'),
  mr: dcm('MR', 'Magnetic Resonance'),
} as const;

/**
 * Writes the measurement report (see the module comment) into the SEG's study.
 * @param input - what to report ({@link measurementReportSchema})
 * @param source - the source series of the SEG (patient, study, slices)
 * @returns the Part-10 Enhanced SR
 * @throws {@link ValidationError} for bad input
 */
export function writeMeasurementReport(input: MeasurementReportInput, source: SegSource): Uint8Array {
  const parsed = measurementReportSchema.safeParse(input);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid measurement report');
  const r = parsed.data;
  const seed = `${r.seg.sopInstanceUid}/sr`;
  const seriesUid = r.seriesInstanceUid ?? uidFromSeed(`${seed}/series`);
  const sopUid = r.sopInstanceUid ?? uidFromSeed(`${seed}/instance`);
  const deviceUid = uidFromSeed(`device/${r.algorithm.name}/${r.algorithm.version}`);
  const segRef = (segmentNumber: number): Item => ({
    RelationshipType: 'CONTAINS',
    ValueType: 'IMAGE',
    ConceptNameCodeSequence: [code(C.segment)],
    ReferencedSOPSequence: [
      {
        ReferencedSOPClassUID: SEGMENTATION_STORAGE,
        ReferencedSOPInstanceUID: r.seg.sopInstanceUid,
        ReferencedSegmentNumber: segmentNumber,
      },
    ],
  });
  const tracking = (label: string, key: string): Item[] => [
    text('HAS OBS CONTEXT', C.trackingId, label),
    uidItem('HAS OBS CONTEXT', C.trackingUid, uidFromSeed(`${seed}/${key}`)),
  ];
  const site = codeItem('HAS CONCEPT MOD', C.findingSite, C.brain);
  const groups: Item[] = [
    ...r.segments.map((s) =>
      container(
        'CONTAINS',
        C.group,
        [
          ...tracking(s.label, `segment-${s.number}`),
          segRef(s.number),
          uidItem('CONTAINS', C.sourceSeries, source.seriesInstanceUid),
          codeItem('CONTAINS', C.finding, s.type),
          site,
          numItem(C.volume, s.volumeMl, UNITS.ml, 3),
        ],
        '1411',
      ),
    ),
    ...r.lesions.map((l, n) =>
      container(
        'CONTAINS',
        C.group,
        [
          ...tracking(`Enhancing lesion ${n + 1}${l.measurable ? '' : ' (non-measurable)'}`, `lesion-${n + 1}`),
          segRef(r.lesionSegmentNumber),
          uidItem('CONTAINS', C.sourceSeries, source.seriesInstanceUid),
          codeItem('CONTAINS', C.finding, C.enhancing),
          site,
          numItem(C.volume, l.volumeMl, UNITS.ml, 3),
          numItem(C.longAxis, l.longestDiameterMm, UNITS.mm, 1),
          numItem(C.shortAxis, l.perpendicularDiameterMm, UNITS.mm, 1),
        ],
        '1411',
      ),
    ),
    ...r.regions.map((g, n) =>
      container(
        'CONTAINS',
        C.group,
        [
          ...tracking(g.label, `region-${n + 1}`),
          codeItem('CONTAINS', C.finding, g.type),
          site,
          numItem(C.volume, g.volumeMl, UNITS.ml, 3),
        ],
        '1501',
      ),
    ),
  ];
  const content = container(
    undefined,
    C.report,
    [
      codeItem('HAS CONCEPT MOD', C.language, C.english),
      codeItem('HAS OBS CONTEXT', C.observerType, C.device),
      uidItem('HAS OBS CONTEXT', C.deviceUid, deviceUid),
      text('HAS OBS CONTEXT', C.deviceName, r.algorithm.name),
      text('HAS OBS CONTEXT', C.deviceModel, `${r.algorithm.name} ${r.algorithm.version}`.slice(0, 64)),
      codeItem('HAS CONCEPT MOD', C.procedure, C.mri),
      container('CONTAINS', C.library, [
        container('CONTAINS', C.libraryGroup, [codeItem('HAS ACQ CONTEXT', C.modality, C.mr)]),
      ]),
      container('CONTAINS', C.measurements, groups),
    ],
    '1500',
  );
  const s = source.study;
  const ds: Record<string, unknown> = {
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: ENHANCED_SR_STORAGE,
    SOPInstanceUID: sopUid,
    StudyDate: s.date ?? r.contentDate,
    StudyTime: s.time ?? r.contentTime,
    ContentDate: r.contentDate,
    ContentTime: r.contentTime,
    AccessionNumber: s.accessionNumber ?? '',
    Modality: 'SR',
    Manufacturer: 'CDSS',
    ReferringPhysicianName: s.referringPhysicianName ?? '',
    StudyDescription: s.description ?? '',
    SeriesDescription: r.seriesDescription,
    ManufacturerModelName: r.algorithm.name,
    SoftwareVersions: r.algorithm.version,
    PatientName: source.patient.name,
    PatientID: source.patient.id,
    PatientBirthDate: source.patient.birthDate ?? '',
    PatientSex: source.patient.sex ?? '',
    StudyInstanceUID: s.instanceUid,
    SeriesInstanceUID: seriesUid,
    StudyID: s.id ?? '',
    SeriesNumber: String(r.seriesNumber),
    InstanceNumber: '1',
    ReferencedPerformedProcedureStepSequence: [],
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PerformedProcedureCodeSequence: [],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: s.instanceUid,
        ReferencedSeriesSequence: [
          {
            SeriesInstanceUID: r.seg.seriesInstanceUid,
            ReferencedSOPSequence: [
              { ReferencedSOPClassUID: SEGMENTATION_STORAGE, ReferencedSOPInstanceUID: r.seg.sopInstanceUid },
            ],
          },
        ],
      },
    ],
    ...content,
  };
  return toPart10(ds, ENHANCED_SR_STORAGE, sopUid);
}
