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
export {
  rasAffine,
  geometryFromRasAffine,
  orientationOf,
  reorderedGeometry,
  orient,
  spacingGeometry,
  resample,
  voxelTransform,
  roundHalfEven,
} from './spatial.js';
export type { Affine, Axcodes, AxisReorder, ResampleMode } from './spatial.js';
export { connectedComponents, keepLargestComponents, removeSmallComponents, voxelsForVolume } from './components.js';
export type { Components, Connectivity } from './components.js';
export { measureLesions } from './measure.js';
export type { LesionMeasurement, LesionReport, MeasureOptions } from './measure.js';
export { plausibilityFlags, plausibilitySchema, enhancingBrainMl } from './flags.js';
export type { PlausibilityInput, PlausibilityThresholds, ResultFlag } from './flags.js';
export { postprocessingSchema, evaluationSchema } from './manifest.js';
export { prepareStudy, studyFindings } from './study-pipeline.js';
export type { PreparedStudy, StudyChannelInput, StudyFindings } from './study-pipeline.js';
