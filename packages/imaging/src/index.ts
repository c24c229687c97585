// Volumes, synthetic brain MRI, DICOM series and SEG (issue 5).
export { IDENTITY_DIRECTION, volumeGeometrySchema, voxelCount, assertVolume, indexToPatient, geometryOf, sameGrid } from './volume.js';
export type { Volume, VolumeGeometry, VoxelArray, Vec3, Mat3 } from './volume.js';
export { generatePhantom, phantomOptionsSchema, BRATS_LABELS, PHANTOM_MODALITIES, PHANTOM_TISSUES } from './phantom.js';
export type { Phantom, PhantomOptions, PhantomModality, PhantomTumour } from './phantom.js';

// Segmentation pipeline, ONNX runtime and model manifest (issue 8).
