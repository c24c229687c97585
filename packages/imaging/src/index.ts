// Volumes, synthetic brain MRI, DICOM series and SEG (issue 5).
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

// Segmentation pipeline, ONNX runtime and model manifest (issue 8).
export { SegmentationError } from './segmentation-errors.js';
export type { SegmentationErrorCode } from './segmentation-errors.js';
export { normalizeIntensity } from './normalize.js';
export type { NormalizeIntensityOptions, IntensityStatistics } from './normalize.js';
export { slidingWindowInference, planWindows, importanceMap } from './sliding-window.js';
export type {
  BlendMode,
  SlidingWindowOptions,
  SlidingWindowResult,
  WindowBatch,
  WindowPlan,
  WindowPrediction,
  WindowPredictor,
} from './sliding-window.js';
export {
  sigmoid,
  softmax,
  threshold,
  bratsLabelsFromChannels,
  bratsLabelsFromLogits,
  sigmoidThresholdLogit,
  argmaxLabels,
  bratsVolumes,
  largestDiameter,
} from './postprocess.js';
export type {
  BratsChannelOrder,
  BratsVolumes,
  EnhancingTumourLabel,
  LargestDiameter,
  RegionVolume,
} from './postprocess.js';
export { OnnxWorkerSession, onnxSessionOptionsSchema } from './onnx-session.js';
export type { OnnxRunOptions, OnnxRunResult, OnnxSessionOptions, OnnxTensorInfo } from './onnx-session.js';
export {
  modelManifestSchema,
  parseModelManifest,
  loadModelManifest,
  manifestFromMonaiBundle,
  loadMonaiBundle,
  sha256File,
} from './manifest.js';
export type { ModelManifest, ModelManifestInput, LoadedManifest, MonaiBundleOptions } from './manifest.js';
export { runSegmentation, stackChannels, volumesToInput, labelsToVolume } from './segmentation.js';
export type {
  SegmentationInput,
  SegmentationOptions,
  SegmentationProgress,
  SegmentationResult,
  SegmentationStage,
  SegmentationTimings,
} from './segmentation.js';
export { SegmentationModel, manifestModelMismatches } from './inference.js';
export type { SegmentationModelSource } from './inference.js';
