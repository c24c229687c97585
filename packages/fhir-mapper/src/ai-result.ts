/**
 * AI analysis result -> one FHIR transaction Bundle: DiagnosticReport, one volume Observation per
 * tumour sub-region (SNOMED 118565006, mL), an mCODE TumorSize for the largest diameter, an mCODE
 * Tumor (BodyStructure), the ImagingStudy built from Orthanc's study and series metadata (with the AI's
 * SEG and SR series), the model as a Device, the Patient (conditional create, so every reference
 * resolves even before the patient itself was synced) and, once a radiologist approved the result, a
 * Provenance naming them. Every entry is conditional or keyed by an identifier, so sending the same
 * result twice (a retry, or the final report after the preliminary one) never duplicates anything.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type {
  Bundle,
  BundleEntry,
  BodyStructure,
  Device,
  DiagnosticReport,
  Endpoint,
  FhirResource,
  Identifier,
  ImagingStudy,
  Observation,
  Patient,
  Provenance,
  Reference,
} from 'fhir/r4.js';
import { coding, concept, quantity, type CodeName } from './codes.js';
import { mapperContext, type MapperOptions } from './context.js';
import { CODE_SYSTEMS, DICOM_UID_SYSTEM, EXTENSIONS, PROFILES, type IdentifierSystems } from './systems.js';
import { compact, parseInput, round } from './util.js';

/** A DICOM UID: dotted digits, at most 64 characters (PS3.5 §9.1). */
export const dicomUidSchema = z
  .string()
  .max(64)
  .regex(/^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/, 'Expected a DICOM UID');

const isoDateTime = z.iso.datetime({ offset: true });
const volumeMl = z.number().finite().nonnegative();

/** One series of the study, from Orthanc's metadata (`/series/{id}` MainDicomTags). */
export const analysisSeriesSchema = z.object({
  seriesInstanceUid: dicomUidSchema,
  modality: z.string().regex(/^[A-Z0-9]{1,16}$/),
  number: z.number().int().nonnegative().optional(),
  description: z.string().optional(),
  numberOfInstances: z.number().int().nonnegative().optional(),
  /** One SOP class per series is enough for FHIR; instances are listed when given. */
  instances: z
    .array(
      z.object({
        sopInstanceUid: dicomUidSchema,
        sopClassUid: dicomUidSchema,
        number: z.number().int().nonnegative().optional(),
      }),
    )
    .optional(),
});

/** The AI analysis result the mapper accepts (the AI worker's result plus the study metadata). */
export const analysisResultSchema = z
  .object({
    /** The AI job id: names the result's identifiers. */
    analysisId: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9._-]+$/),
    /** OpenEMR patient uuid. */
    patientUuid: z.uuid(),
    study: z.object({
      studyInstanceUid: dicomUidSchema,
      /** Study date and time (FHIR dateTime with zone, or a date). */
      started: z.union([isoDateTime, z.iso.date()]).optional(),
      description: z.string().optional(),
      accessionNumber: z.string().optional(),
      /** Orthanc's DICOMweb root (`http://orthanc/dicom-web`), for an Endpoint on the ImagingStudy. */
      dicomWebUrl: z.url().optional(),
      series: z.array(analysisSeriesSchema).min(1),
    }),
    segmentation: z.object({ seriesInstanceUid: dicomUidSchema, sopInstanceUid: dicomUidSchema }),
    /** The DICOM SR (TID 1500 Measurement Report) stored beside the SEG, if any. */
    structuredReport: z.object({ seriesInstanceUid: dicomUidSchema, sopInstanceUid: dicomUidSchema }).optional(),
    /** Sum of the products of the perpendicular diameters of the measurable enhancing lesions, mm². */
    sumOfProductsMm2: z.number().finite().nonnegative().optional(),
    /** Number of enhancing lesions (connected components of the enhancing tumour). */
    lesionCount: z.number().int().nonnegative().optional(),
    /** Plausibility flags: each becomes a note and an "indeterminate" interpretation on the Observations. */
    flags: z.array(z.object({ code: z.string().min(1), message: z.string().min(1) })).default([]),
    /**
     * The approved analysis of the same study that this one corrects: the report is then `amended` in place (same
     * DiagnosticReport and Observations, new values), never a second report.
     */
    amends: z
      .object({
        analysisId: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[A-Za-z0-9._-]+$/),
        segSopInstanceUid: dicomUidSchema,
      })
      .optional(),
    /** Who approved the result (status `final` or `amended`): recorded as a Provenance. */
    approval: z
      .object({ reviewer: z.string().min(1), reviewedAt: isoDateTime, comment: z.string().optional() })
      .optional(),
    /** Volumes in mL of the BraTS regions: enhancing tumour, tumour core, whole tumour (nested). */
    volumesMl: z.object({ ET: volumeMl, TC: volumeMl, WT: volumeMl }),
    /** Largest in-plane diameter of the whole tumour, mm. */
    largestDiameterMm: z.number().finite().nonnegative(),
    /** Up to two further perpendicular diameters, mm. */
    otherDiametersMm: z.array(z.number().finite().nonnegative()).max(2).optional(),
    model: z.object({
      name: z.string().min(1),
      version: z.string().min(1),
      manufacturer: z.string().optional(),
      intendedUse: z.string().optional(),
    }),
    timings: z.object({
      startedAt: isoDateTime,
      finishedAt: isoDateTime,
      inferenceMs: z.number().nonnegative().optional(),
      totalMs: z.number().nonnegative().optional(),
    }),
    /** `preliminary` until a clinician confirms the result. */
    status: z.enum(['preliminary', 'final', 'amended', 'corrected', 'entered-in-error']).default('preliminary'),
    /** Stable per patient and lesion (mCODE Tumor.identifier); default `<patientUuid>:brain-1`. */
    tumorId: z.string().min(1).optional(),
    conclusion: z.string().optional(),
  })
  .superRefine((v, ctx) => {
    const tol = 1e-6;
    if (v.volumesMl.ET > v.volumesMl.TC + tol)
      ctx.addIssue({ code: 'custom', path: ['volumesMl', 'ET'], message: 'ET must not exceed TC (nested regions)' });
    if (v.volumesMl.TC > v.volumesMl.WT + tol)
      ctx.addIssue({ code: 'custom', path: ['volumesMl', 'TC'], message: 'TC must not exceed WT (nested regions)' });
    if (v.amends && v.status !== 'amended')
      ctx.addIssue({ code: 'custom', path: ['status'], message: 'an amendment has status amended' });
    if (v.approval && v.status !== 'final' && v.status !== 'amended')
      ctx.addIssue({ code: 'custom', path: ['approval'], message: 'only a final or amended report has an approval' });
    if (Date.parse(v.timings.finishedAt) < Date.parse(v.timings.startedAt))
      ctx.addIssue({ code: 'custom', path: ['timings', 'finishedAt'], message: 'finishedAt is before startedAt' });
  });

/** An AI analysis result (input). */
export type AnalysisResultInput = z.input<typeof analysisResultSchema>;
/** An AI analysis result (parsed). */
export type AnalysisResult = z.output<typeof analysisResultSchema>;

/** Options of {@link analysisToTransaction}. */
export interface AnalysisMapperOptions extends MapperOptions {
  /** The subject; default a logical reference by the OpenEMR patient uuid. */
  subject?: Reference;
  /** Generates the `urn:uuid` fullUrls (tests pass a deterministic one). Default `crypto.randomUUID`. */
  newUuid?: () => string;
}

const REGIONS: readonly { key: 'ET' | 'TC' | 'WT'; codes: readonly CodeName[]; label: string }[] = [
  { key: 'ET', codes: ['regionEnhancingTumor', 'enhancingLesion'], label: 'Enhancing tumor' },
  { key: 'TC', codes: ['regionTumorCore'], label: 'Tumor core' },
  { key: 'WT', codes: ['regionWholeTumor'], label: 'Whole tumor' },
];

/** `identifier=<system>|<value>` for a search or conditional URL. */
export function identifierQuery(id: Identifier): string {
  return `identifier=${encodeURIComponent(id.system ?? '')}|${encodeURIComponent(id.value ?? '')}`;
}

const SEG_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.66.4';
const ENHANCED_SR_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.22';

function dicomId(uid: string): Identifier {
  return { system: DICOM_UID_SYSTEM, value: `urn:oid:${uid}` };
}

/** The identifiers the transaction's entries are keyed by (for lookups after a sync). */
export interface AnalysisIdentifiers {
  patient: Identifier;
  diagnosticReport: Identifier;
  imagingStudy: Identifier;
  device: Identifier;
  tumor: Identifier;
  volumes: Record<'ET' | 'TC' | 'WT', Identifier>;
  tumorSize: Identifier;
}

/**
 * The identifiers of the resources {@link analysisToTransaction} produces for a result.
 * @throws `ValidationError` (`@cdss/core`) when the result is invalid
 */
export function analysisIdentifiers(input: unknown, options: MapperOptions = {}): AnalysisIdentifiers {
  const ctx = mapperContext(options);
  const r = parseInput(analysisResultSchema, input, 'AI analysis result');
  return identifiersOf(r, ctx.systems);
}

function identifiersOf(r: AnalysisResult, systems: IdentifierSystems): AnalysisIdentifiers {
  const { aiModel: modelSystem, tumor: tumorSystem, analysis: analysisSystem } = systems;
  // An amendment updates the approved report and its results in place: it keeps their identifiers.
  const key = r.amends?.analysisId ?? r.analysisId;
  return {
    patient: { system: systems.patientUuid, value: r.patientUuid },
    diagnosticReport: dicomId(r.amends?.segSopInstanceUid ?? r.segmentation.sopInstanceUid),
    imagingStudy: dicomId(r.study.studyInstanceUid),
    device: { system: modelSystem, value: `${r.model.name}@${r.model.version}` },
    tumor: { system: tumorSystem, value: r.tumorId ?? `${r.patientUuid}:brain-1` },
    volumes: {
      ET: { system: analysisSystem, value: `${key}:volume-ET` },
      TC: { system: analysisSystem, value: `${key}:volume-TC` },
      WT: { system: analysisSystem, value: `${key}:volume-WT` },
    },
    tumorSize: { system: analysisSystem, value: `${key}:tumor-size` },
  };
}

function fmt(ml: number): string {
  return round(ml, 2).toFixed(2);
}

/**
 * AI analysis result -> a FHIR transaction Bundle (see the module comment). References between the
 * entries use `urn:uuid` fullUrls. The analysis's own resources (report, observations, study) are
 * `PUT <Type>?identifier=<system>|<value>` (conditional update); the shared, unchanging ones (Device,
 * Endpoint, Tumor) are `POST` with `ifNoneExist` (conditional create).
 * @param input - the result ({@link analysisResultSchema})
 * @param options - site, subject, uuid generator
 * @returns the transaction Bundle
 * @throws `ValidationError` (`@cdss/core`) when the result is invalid (nothing is built)
 */
export function analysisToTransaction(input: unknown, options: AnalysisMapperOptions = {}): Bundle {
  const ctx = mapperContext(options);
  const r = parseInput(analysisResultSchema, input, 'AI analysis result');
  const newUuid = options.newUuid ?? randomUUID;
  const ids = identifiersOf(r, ctx.systems);
  const url = (): string => `urn:uuid:${newUuid()}`;
  const urls = {
    patient: url(),
    device: url(),
    endpoint: url(),
    study: url(),
    tumor: url(),
    volumes: { ET: url(), TC: url(), WT: url() },
    tumorSize: url(),
    report: url(),
  };
  // The Patient is created in the same transaction when the server has none with this identifier yet (conditional
  // create), so the subject resolves; the patient sync later fills in the demographics by the same identifier.
  const subject: Reference = options.subject ?? { reference: urls.patient };
  const patient: Patient | undefined = options.subject
    ? undefined
    : { resourceType: 'Patient', identifier: [{ ...ids.patient, use: 'official' }] };
  const effective = r.study.started ?? r.timings.startedAt;
  const hasTumor = r.volumesMl.WT > 0;

  const device: Device = compact({
    resourceType: 'Device' as const,
    identifier: [ids.device],
    status: 'active' as const,
    manufacturer: r.model.manufacturer,
    deviceName: [{ name: r.model.name, type: 'model-name' as const }],
    type: { text: 'AI segmentation model' },
    version: [{ value: r.model.version }],
    note: r.model.intendedUse ? [{ text: r.model.intendedUse }] : undefined,
  });

  // The AI's own series (SEG, SR) are series of the source study: listing them there is how the report's
  // derivedFrom (an ImagingStudy reference) reaches them, with their SOP instance UIDs.
  const aiSeries: z.output<typeof analysisSeriesSchema>[] = [
    {
      seriesInstanceUid: r.segmentation.seriesInstanceUid,
      modality: 'SEG',
      description: `AI segmentation (${r.model.name} ${r.model.version})`,
      numberOfInstances: 1,
      instances: [{ sopInstanceUid: r.segmentation.sopInstanceUid, sopClassUid: SEG_SOP_CLASS, number: 1 }],
    },
    ...(r.structuredReport
      ? [
          {
            seriesInstanceUid: r.structuredReport.seriesInstanceUid,
            modality: 'SR',
            description: `AI measurements (${r.model.name} ${r.model.version})`,
            numberOfInstances: 1,
            instances: [
              { sopInstanceUid: r.structuredReport.sopInstanceUid, sopClassUid: ENHANCED_SR_SOP_CLASS, number: 1 },
            ],
          },
        ]
      : []),
  ];
  const series = [
    ...r.study.series.filter((s) => !aiSeries.some((a) => a.seriesInstanceUid === s.seriesInstanceUid)),
    ...aiSeries,
  ];
  const modalityCoding = (m: string): ReturnType<typeof coding> =>
    m === 'MR'
      ? coding('modalityMr')
      : m === 'SEG'
        ? coding('modalitySeg')
        : m === 'SR'
          ? coding('modalitySr')
          : { system: CODE_SYSTEMS.dicomDcm, code: m };
  const instanceTotal = series.reduce((n, s) => n + (s.numberOfInstances ?? s.instances?.length ?? 0), 0);
  const study: ImagingStudy = compact({
    resourceType: 'ImagingStudy' as const,
    identifier: [
      ids.imagingStudy,
      ...(r.study.accessionNumber ? [{ type: { text: 'Accession number' }, value: r.study.accessionNumber }] : []),
    ],
    status: 'available' as const,
    modality: [...new Set(series.map((s) => s.modality))].map(modalityCoding),
    subject,
    started: r.study.started,
    endpoint: r.study.dicomWebUrl ? [{ reference: urls.endpoint }] : undefined,
    numberOfSeries: series.length,
    numberOfInstances: instanceTotal > 0 ? instanceTotal : undefined,
    description: r.study.description,
    series: series.map((s) =>
      compact({
        uid: s.seriesInstanceUid,
        number: s.number,
        modality: modalityCoding(s.modality),
        description: s.description,
        numberOfInstances: s.numberOfInstances ?? s.instances?.length,
        instance: s.instances?.map((i) =>
          compact({
            uid: i.sopInstanceUid,
            sopClass: { system: 'urn:ietf:rfc:3986', code: `urn:oid:${i.sopClassUid}` },
            number: i.number,
          }),
        ),
      }),
    ),
  });

  const endpoint: Endpoint | undefined = r.study.dicomWebUrl
    ? {
        resourceType: 'Endpoint',
        identifier: [{ system: 'urn:cdss:dicomweb', value: r.study.dicomWebUrl }],
        status: 'active',
        connectionType: coding('wadoRs'),
        name: 'Orthanc DICOMweb',
        payloadType: [{ text: 'DICOM' }],
        payloadMimeType: ['application/dicom'],
        address: r.study.dicomWebUrl,
      }
    : undefined;

  const tumor: BodyStructure = {
    resourceType: 'BodyStructure',
    meta: { profile: [PROFILES.tumor] },
    // mCODE: identifier[bodyStructureIdentifier] (use usual, type BodyStructure); morphology is-a SCT 1240414004
    identifier: [
      {
        ...ids.tumor,
        use: 'usual',
        type: concept('resourceTypeBodyStructure'),
      },
    ],
    morphology: concept('malignantNeoplasmMorphology'),
    location: concept('brainStructure'),
    patient: subject,
  };

  // One reference of the right type: the ImagingStudy, whose series include the SEG (and SR) the values come from.
  const derivedFrom: Reference[] = [
    {
      reference: urls.study,
      display: `MR study with the AI segmentation (SEG series ${r.segmentation.seriesInstanceUid})`,
    },
  ];
  const flagged = r.flags.length > 0;
  const flagText = r.flags.map((f) => `${f.code}: ${f.message}`).join('; ');
  const doubt: Pick<Observation, 'interpretation' | 'note'> = flagged
    ? {
        interpretation: [concept('interpretationIndeterminate', 'Flagged for review: implausible result')],
        note: [{ text: `Plausibility flags: ${flagText}` }],
      }
    : {};
  const volumeObs = REGIONS.map((reg): Observation => ({
    resourceType: 'Observation',
    identifier: [ids.volumes[reg.key]],
    status: r.status,
    category: [concept('categoryImaging')],
    code: concept('volume', `${reg.label} volume`),
    subject,
    focus: [{ reference: urls.tumor }],
    effectiveDateTime: effective,
    issued: r.timings.finishedAt,
    valueQuantity: quantity(round(r.volumesMl[reg.key], 3), 'mL'),
    bodySite: concept(reg.codes, reg.label),
    method: concept('mri'),
    device: { reference: urls.device },
    derivedFrom,
    ...doubt,
  }));

  const tumorSize: Observation | undefined = hasTumor
    ? {
        resourceType: 'Observation',
        meta: { profile: [PROFILES.tumorSize] },
        identifier: [ids.tumorSize],
        status: r.status,
        category: [concept('categoryImaging')],
        code: concept('tumorSize'),
        subject,
        focus: [{ reference: urls.tumor }],
        effectiveDateTime: effective,
        issued: r.timings.finishedAt,
        method: concept('mri'),
        device: { reference: urls.device },
        derivedFrom,
        ...doubt,
        component: [
          { code: concept('tumorLongestDimension'), valueQuantity: quantity(round(r.largestDiameterMm, 1), 'mm') },
          ...(r.otherDiametersMm ?? []).map((d) => ({
            code: concept('tumorOtherDimension'),
            valueQuantity: quantity(round(d, 1), 'mm'),
          })),
        ],
      }
    : undefined;

  const lesions =
    r.lesionCount !== undefined
      ? `; ${r.lesionCount} enhancing lesion${r.lesionCount === 1 ? '' : 's'}${r.sumOfProductsMm2 !== undefined ? `, sum of products of perpendicular diameters ${round(r.sumOfProductsMm2, 0)} mm²` : ''}`
      : '';
  const conclusion =
    (flagged ? `FLAGGED FOR REVIEW (${flagText}). ` : '') +
    (r.conclusion ??
      (hasTumor
        ? `Automated segmentation (${r.model.name} ${r.model.version}): whole tumor ${fmt(r.volumesMl.WT)} mL, tumor core ${fmt(r.volumesMl.TC)} mL, enhancing tumor ${fmt(r.volumesMl.ET)} mL; largest diameter ${round(r.largestDiameterMm, 1)} mm${lesions}.`
        : `Automated segmentation (${r.model.name} ${r.model.version}): no tumor segmented.`));
  const report: DiagnosticReport = compact({
    resourceType: 'DiagnosticReport' as const,
    extension: [{ url: EXTENSIONS.aiModelDevice, valueReference: { reference: urls.device } }],
    identifier: [ids.diagnosticReport, { system: ctx.systems.analysis, value: r.analysisId }],
    status: r.status,
    category: [concept('radiology')],
    code: concept('mrBrain'),
    subject,
    effectiveDateTime: effective,
    issued: r.timings.finishedAt,
    imagingStudy: [{ reference: urls.study }],
    result: [
      ...REGIONS.map((reg) => ({ reference: urls.volumes[reg.key] })),
      ...(tumorSize ? [{ reference: urls.tumorSize }] : []),
    ],
    conclusion,
    conclusionCode: hasTumor ? [concept('neoplasmOfBrain')] : undefined,
  });

  // Per analysis: conditional update, so the final report replaces the preliminary one in place.
  const entry = (fullUrl: string, resource: FhirResource, id: Identifier): BundleEntry => ({
    fullUrl,
    resource,
    request: { method: 'PUT', url: `${resource.resourceType}?${identifierQuery(id)}` },
  });
  // Shared by many analyses (the model, the DICOMweb endpoint, the patient's tumour) and never changed:
  // conditional create, which HAPI keeps unique even when analyses sync in parallel processes.
  const shared = (fullUrl: string, resource: FhirResource, id: Identifier): BundleEntry => ({
    fullUrl,
    resource,
    request: { method: 'POST', url: resource.resourceType, ifNoneExist: identifierQuery(id) },
  });
  // Who approved: a Provenance under an id derived from the analysis, so a resend replaces it (R4 Provenance has
  // no identifier to make a conditional write on).
  const provenance: Provenance | undefined = r.approval
    ? compact({
        resourceType: 'Provenance' as const,
        id: `approval-${r.analysisId.replace(/_/g, '-')}`.slice(0, 64),
        target: [{ reference: urls.report }],
        recorded: r.approval.reviewedAt,
        activity: r.status === 'amended' ? concept('operationUpdate', 'Amended report approved') : undefined,
        reason: r.approval.comment ? [{ text: r.approval.comment }] : undefined,
        agent: [
          {
            type: concept('participantVerifier'),
            who: { identifier: { system: ctx.systems.user, value: r.approval.reviewer } },
          },
          { type: { text: 'AI model' }, who: { reference: urls.device } },
        ],
      })
    : undefined;
  const entries: BundleEntry[] = [
    ...(patient ? [shared(urls.patient, patient, ids.patient)] : []),
    shared(urls.device, device, ids.device),
    ...(endpoint ? [shared(urls.endpoint, endpoint, endpoint.identifier?.[0] as Identifier)] : []),
    entry(urls.study, study, ids.imagingStudy),
    shared(urls.tumor, tumor, ids.tumor),
    ...volumeObs.map((o, i) =>
      entry(urls.volumes[(REGIONS[i] as (typeof REGIONS)[number]).key], o, o.identifier?.[0] as Identifier),
    ),
    ...(tumorSize ? [entry(urls.tumorSize, tumorSize, ids.tumorSize)] : []),
    entry(urls.report, report, ids.diagnosticReport),
    ...(provenance
      ? [
          {
            fullUrl: `urn:uuid:${newUuid()}`,
            resource: provenance,
            request: { method: 'PUT' as const, url: `Provenance/${provenance.id ?? ''}` },
          },
        ]
      : []),
  ];
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}
