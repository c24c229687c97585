export {
  IDENTITY_DIRECTION,
  volumeGeometrySchema,
  voxelCount,
  assertVolume,
  indexToPatient,
  geometryOf,
  sameGrid,
} from './volume.js';
export type { Volume, VolumeGeometry, VoxelArray, Vec3, Mat3 } from './volume.js';
export { generatePhantom, phantomOptionsSchema, BRATS_LABELS, PHANTOM_MODALITIES, PHANTOM_TISSUES } from './phantom.js';
export type { Phantom, PhantomOptions, PhantomModality, PhantomTumour } from './phantom.js';
export { DicomParseError, SeriesGeometryError, StudySeriesError } from './dicom-errors.js';
export type { SeriesProblem } from './dicom-errors.js';
export {
  parseDicom,
  getString,
  getNumbers,
  getUint16,
  getUint32,
  getBytes,
  tagString,
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
} from './dicom-parse.js';
export type { DicomElement, DicomDataset, ParsedDicom, ParseDicomOptions } from './dicom-parse.js';
export {
  writeDicomSeries,
  writePhantomStudy,
  toPart10,
  uidFromSeed,
  formatDS,
  seriesWriteOptionsSchema,
  MR_IMAGE_STORAGE,
  PHANTOM_SERIES,
} from './dicom-write.js';
export type { SeriesWriteOptions, PhantomStudyOptions, WrittenSeries, WrittenStudy } from './dicom-write.js';
export { sliceFromPart10, sliceFromParsed, sliceHead, volumeFromSlices, volumeFromPart10 } from './series-volume.js';
export type { DicomSlice, SliceHead, VolumeFromSlicesOptions } from './series-volume.js';
export { SeriesVolumeAssembler } from './series-assembler.js';
export type { InstanceSink, SeriesVolumeAssemblerOptions } from './series-assembler.js';
export { VoxelBufferPool } from './voxel-pool.js';
export type { VoxelBufferPoolOptions } from './voxel-pool.js';
export { selectStudySeries, buildStudyInput, DEFAULT_SELECTION_RULES, STUDY_CHANNELS } from './series-study.js';
export type { StudyChannel, SeriesCandidate, SeriesRule, SelectionRules, StudyInput } from './series-study.js';
export {
  writeSeg,
  readSeg,
  segSourceFromPart10,
  segWriteOptionsSchema,
  BRATS_SEGMENTS,
  SEGMENTATION_STORAGE,
} from './seg.js';
export type {
  SegSource,
  SegWriteOptions,
  SegReadOptions,
  SegReadResult,
  SegSegment,
  SegmentDefinition,
  CodedConcept,
} from './seg.js';
export { writeMeasurementReport, measurementReportSchema, ENHANCED_SR_STORAGE } from './sr.js';
export type { MeasurementReportInput } from './sr.js';
export { generateTemplatePhantom, templatePhantomOptionsSchema } from './template-phantom.js';
export type { TemplatePhantomOptions } from './template-phantom.js';
