// Volumes, synthetic brain MRI, DICOM series and SEG (issue 5).
export {};

// Segmentation pipeline, ONNX runtime and model manifest (issue 8).
