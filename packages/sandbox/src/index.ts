// OpenEMR emulator (issue 3).
export {};

// Embedded FHIR R4 server (issue 4).

// DICOM store emulator (issue 5).
