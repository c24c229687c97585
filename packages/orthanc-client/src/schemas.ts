/**
 * zod schemas of the Orthanc REST answers and DICOM JSON (PS3.18 F.2) the client reads. Types come from these.
 * Objects are loose where Orthanc adds fields across versions: unknown keys are kept, known keys are checked.
 * @packageDocumentation
 */
import { z } from 'zod';

/** zod schema of a JSON value (what simplified tags and job content can hold): zod's own `z.json()`. */
export const jsonValueSchema = z.json();
/** A JSON value. */
export type JsonValue = z.infer<typeof jsonValueSchema>;

/** `GET /system`. */
export const systemInfoSchema = z.looseObject({
  Name: z.string(),
  Version: z.string(),
  ApiVersion: z.number().int(),
  DicomAet: z.string(),
  DicomPort: z.number().int(),
  HttpPort: z.number().int(),
  PluginsEnabled: z.boolean().optional(),
  DatabaseVersion: z.number().int().optional(),
});
/** Orthanc's `/system` answer. */
export type SystemInfo = z.infer<typeof systemInfoSchema>;

/** `GET /statistics`. */
export const statisticsSchema = z.looseObject({
  CountPatients: z.number().int(),
  CountStudies: z.number().int(),
  CountSeries: z.number().int(),
  CountInstances: z.number().int(),
  TotalDiskSizeMB: z.number().optional(),
});
/** Orthanc's `/statistics` answer. */
export type Statistics = z.infer<typeof statisticsSchema>;

const mainTags = z.record(z.string(), z.string());

/** `GET /patients/{id}`. */
export const patientSchema = z.looseObject({
  ID: z.string(),
  Type: z.literal('Patient'),
  MainDicomTags: mainTags,
  Studies: z.array(z.string()),
  IsStable: z.boolean().optional(),
  LastUpdate: z.string().optional(),
});
/** A patient resource. */
export type OrthancPatient = z.infer<typeof patientSchema>;

/** `GET /studies/{id}`. */
export const studySchema = z.looseObject({
  ID: z.string(),
  Type: z.literal('Study'),
  MainDicomTags: mainTags,
  PatientMainDicomTags: mainTags.optional(),
  ParentPatient: z.string(),
  Series: z.array(z.string()),
  IsStable: z.boolean().optional(),
  LastUpdate: z.string().optional(),
});
/** A study resource. */
export type OrthancStudy = z.infer<typeof studySchema>;

/** `GET /series/{id}`. */
export const seriesSchema = z.looseObject({
  ID: z.string(),
  Type: z.literal('Series'),
  MainDicomTags: mainTags,
  ParentStudy: z.string(),
  Instances: z.array(z.string()),
  ExpectedNumberOfInstances: z.number().int().nullable().optional(),
  Status: z.string().optional(),
  IsStable: z.boolean().optional(),
  LastUpdate: z.string().optional(),
});
/** A series resource. */
export type OrthancSeries = z.infer<typeof seriesSchema>;

/** `GET /instances/{id}`. */
export const instanceSchema = z.looseObject({
  ID: z.string(),
  Type: z.literal('Instance'),
  MainDicomTags: mainTags,
  ParentSeries: z.string(),
  FileSize: z.number().int().optional(),
  FileUuid: z.string().optional(),
  IndexInSeries: z.number().int().nullable().optional(),
});
/** An instance resource. */
export type OrthancInstance = z.infer<typeof instanceSchema>;

/** `GET /series/{id}/ordered-slices`. */
export const orderedSlicesSchema = z.looseObject({
  Type: z.string(),
  Dicom: z.array(z.string()),
  Slices: z.array(z.string()),
  SlicesShort: z.array(z.tuple([z.string(), z.number().int(), z.number().int()])),
});
/** Slices of a series in geometric order, as Orthanc sorts them. */
export type OrderedSlices = z.infer<typeof orderedSlicesSchema>;

/** One answer item of `POST /instances`. */
export const uploadResultSchema = z.looseObject({
  ID: z.string(),
  ParentPatient: z.string(),
  ParentStudy: z.string(),
  ParentSeries: z.string(),
  Path: z.string(),
  Status: z.enum(['Success', 'AlreadyStored', 'Failure', 'FilteredOut']),
});
/** The result of storing one instance. */
export type UploadResult = z.infer<typeof uploadResultSchema>;

/** `POST /tools/lookup`. */
export const lookupResultSchema = z.array(
  z.looseObject({ ID: z.string(), Path: z.string(), Type: z.enum(['Patient', 'Study', 'Series', 'Instance']) }),
);
/** Resources whose DICOM UID matched. */
export type LookupResult = z.infer<typeof lookupResultSchema>;

/** One change of `GET /changes`. */
export const changeSchema = z.looseObject({
  ChangeType: z.string(),
  Date: z.string(),
  ID: z.string(),
  Path: z.string(),
  ResourceType: z.string(),
  Seq: z.number().int(),
});
/** One entry of the change feed. `Seq` is the checkpoint to resume from. */
export type OrthancChange = z.infer<typeof changeSchema>;

/** `GET /changes`. */
export const changesPageSchema = z.looseObject({
  Changes: z.array(changeSchema),
  Done: z.boolean(),
  Last: z.number().int(),
});
/** A page of the change feed. */
export type ChangesPage = z.infer<typeof changesPageSchema>;

/** `GET /jobs/{id}`. */
export const jobSchema = z.looseObject({
  ID: z.string(),
  State: z.enum(['Pending', 'Running', 'Success', 'Failure', 'Paused', 'Retry']),
  Progress: z.number(),
  Type: z.string(),
  ErrorCode: z.number().int().optional(),
  ErrorDescription: z.string().optional(),
  Content: z.record(z.string(), jsonValueSchema).optional(),
});
/** An asynchronous job. */
export type OrthancJob = z.infer<typeof jobSchema>;

/** Answer of an asynchronous request: the job created. */
export const jobCreatedSchema = z.looseObject({ ID: z.string(), Path: z.string() });

/** One attribute of a DICOM JSON dataset (PS3.18 F.2.2). */
export interface DicomJsonAttribute {
  /** Value representation. */
  vr: string;
  /** Values: strings, numbers, person names (`{ Alphabetic }`) or nested datasets (SQ). */
  Value?:
    | Array<
        string | number | null | { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | DicomJsonDataset
      >
    | undefined;
  /** Where to fetch bulk data. */
  BulkDataURI?: string | undefined;
  /** Base64 bulk data. */
  InlineBinary?: string | undefined;
}
/** A DICOM JSON dataset: attributes by 8-hex-digit tag. */
export type DicomJsonDataset = { [tag: string]: DicomJsonAttribute };

const pnSchema = z.looseObject({
  Alphabetic: z.string().optional(),
  Ideographic: z.string().optional(),
  Phonetic: z.string().optional(),
});
/** zod schema of {@link DicomJsonDataset}. */
export const dicomJsonDatasetSchema: z.ZodType<DicomJsonDataset> = z.lazy(() =>
  z.record(
    z.string().regex(/^[0-9A-Fa-f]{8}$/, 'an 8-hex-digit tag'),
    z.object({
      vr: z.string().regex(/^[A-Z]{2}$/),
      Value: z.array(z.union([z.string(), z.number(), z.null(), pnSchema, dicomJsonDatasetSchema])).optional(),
      BulkDataURI: z.string().optional(),
      InlineBinary: z.string().optional(),
    }),
  ),
);
/** A QIDO-RS answer or WADO-RS metadata: an array of datasets. */
export const dicomJsonArraySchema = z.array(dicomJsonDatasetSchema);

/** A STOW-RS answer (PS3.18 10.5.3): referenced (stored) and failed SOP sequences. */
export const stowResponseSchema = dicomJsonDatasetSchema;
