export { createDicomStoreEmulator } from './server.js';
export type { DicomStoreEmulator, DicomStoreEmulatorOptions } from './server.js';
export { DicomFileStore, StoreInputError, orthancId } from './store.js';
export type {
  DicomFileStoreOptions,
  StoredInstance,
  StoredResource,
  StoreChange,
  Level as DicomStoreLevel,
} from './store.js';
export { seedPhantomStudies } from './seed.js';
export type { DemoPatient } from './seed.js';
