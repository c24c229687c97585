// OpenEMR emulator (issue 3).
export {
  createOpenEmrEmulator,
  OpenEmrEngine,
  DEFAULT_TOKEN_LIFETIMES,
  SEED_ADMIN,
  SEED_CLIENT,
  blankPatientRow as blankOpenEmrPatientRow,
} from './openemr/index.js';
export type {
  OpenEmrEmulatorRouter,
  OpenEmrEmulatorOptions,
  OpenEmrEmulatorStats,
  EmulatorRequest as OpenEmrEmulatorRequest,
  EmulatorResponse as OpenEmrEmulatorResponse,
  OpenEmrVersion,
  TokenLifetimes as OpenEmrTokenLifetimes,
} from './openemr/index.js';

// Embedded FHIR R4 server (issue 4).
export {
  createEmbeddedFhirServer,
  embeddedFhirServerOptionsSchema,
  loadFhirDefinitions,
  isOperationOutcome,
  createSmartBackendAuth,
  createSmartFhirGateway,
  startEmbeddedFhirServerThread,
  backendClientSchema,
  sendBearerRefusal,
} from './fhir/index.js';
export type {
  EmbeddedFhirServer,
  EmbeddedFhirServerOptions,
  EmbeddedFhirServerThread,
  EmbeddedFhirServerThreadOptions,
  BackendClient,
  BearerCheck,
  SmartBackendAuth,
  SmartBackendAuthOptions,
  SmartBackendAuthStats,
  GatewayRequest,
  SmartFhirGateway,
  SmartFhirGatewayOptions,
} from './fhir/index.js';

// DICOM store emulator (issue 5).
export { createDicomStoreEmulator, DicomFileStore, StoreInputError, orthancId } from './dicom/index.js';
export type {
  DicomStoreEmulator,
  DicomStoreEmulatorOptions,
  DicomFileStoreOptions,
  StoredInstance,
  StoredResource,
  StoreChange,
  DicomStoreLevel,
} from './dicom/index.js';
export { seedPhantomStudies } from './dicom/index.js';
export type { DemoPatient } from './dicom/index.js';
