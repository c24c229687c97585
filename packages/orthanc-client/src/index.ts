export { OrthancClient, JobFailedError, toUint8 } from './client.js';
export type {
  OrthancClientOptions,
  TransferOptions,
  ResourceLevel,
  FindQuery,
  InstancesProgress,
  ChangesOptions,
} from './client.js';
export { DicomWebClient, StowError } from './dicomweb.js';
export type { QidoQuery, RetrieveOptions, StoreResult } from './dicomweb.js';
export {
  parseMultipart,
  parseMultipartPieces,
  buildMultipart,
  multipartBoundary,
  MultipartError,
  MultipartReader,
} from './multipart.js';
export type { MultipartPart, MultipartPartSink, MultipartPieces } from './multipart.js';
export { mapLimit } from './pool.js';
export { DICOM_TAGS, dicomString, dicomNumbers, dicomItems } from './dicom-json.js';
export type { DicomKeyword } from './dicom-json.js';
export {
  retrieveSeriesVolume,
  retrieveSeriesVolumeRest,
  retrieveStudyInput,
  retrieveSeg,
  findStudySeries,
  segSourceFromMetadata,
} from './volumes.js';
export type { RetrieveVolumeOptions, RetrieveStudyInputOptions } from './volumes.js';
export {
  systemInfoSchema,
  statisticsSchema,
  patientSchema,
  studySchema,
  seriesSchema,
  instanceSchema,
  orderedSlicesSchema,
  uploadResultSchema,
  lookupResultSchema,
  changeSchema,
  changesPageSchema,
  jobSchema,
  jsonValueSchema,
  dicomJsonDatasetSchema,
  dicomJsonArraySchema,
} from './schemas.js';
export type {
  SystemInfo,
  Statistics,
  OrthancPatient,
  OrthancStudy,
  OrthancSeries,
  OrthancInstance,
  OrderedSlices,
  UploadResult,
  LookupResult,
  OrthancChange,
  ChangesPage,
  OrthancJob,
  JsonValue,
  DicomJsonAttribute,
  DicomJsonDataset,
} from './schemas.js';
export { createKeepAliveAgent } from './agent.js';
export type { KeepAliveAgentOptions } from './agent.js';
