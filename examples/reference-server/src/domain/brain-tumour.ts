/**
 * Clinical matching shared by the CDS Hooks service, the automatic analyses and the sandbox seed: is a problem a
 * brain tumour, is an order a brain MRI, and the four-sequence tumour protocol the model needs.
 */
import type { CodeableConcept, Coding, Condition, ServiceRequest } from 'fhir/r4.js';

const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
const ICD10_CM = 'http://hl7.org/fhir/sid/icd-10-cm';
const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';
const CPT = 'http://www.ama-assn.org/go/cpt';

/**
 * ICD-10 codes of brain and meningeal tumours: C70 (meninges), C71 (brain), C79.31 (secondary, brain), D32
 * (benign, meninges), D33.0–D33.2 (benign, brain), D43.0–D43.2 (uncertain behaviour, brain).
 */
const ICD10_PATTERN = /^(C70|C71|C79\.?31|D32|D33\.?[0-2]|D43\.?[0-2])/i;
/** SNOMED CT: neoplasm of brain, malignant neoplasm of brain, glioblastoma, secondary malignant neoplasm of brain. */
const SNOMED_CODES = new Set(['126952004', '428061005', '393563007', '94225005']);
/** Problem titles as clinicians type them. */
const TITLE_PATTERN =
  /glio|astrocytom|oligodendrogliom|ependymom|medulloblastom|meningiom|\bGBM\b|brain (tumou?r|neoplasm|metasta|mass|lesion)|(tumou?r|neoplasm|metastas[ie]s?) of (the )?brain/i;

/**
 * Whether a coded or free-text problem is a brain tumour.
 * @param problem - codings (FHIR) and/or text (a problem title, or OpenEMR's `ICD10:C71.9` diagnosis string)
 */
export function isBrainTumourProblem(problem: { codings?: readonly Coding[]; text?: string }): boolean {
  for (const coding of problem.codings ?? []) {
    const code = coding.code ?? '';
    if ((coding.system === ICD10 || coding.system === ICD10_CM) && ICD10_PATTERN.test(code)) return true;
    if (coding.system === SNOMED && SNOMED_CODES.has(code)) return true;
  }
  const text = problem.text ?? '';
  if (TITLE_PATTERN.test(text)) return true;
  // OpenEMR writes diagnoses as `ICD10:C71.9` (several separated by `;`).
  return text
    .split(/[;,\s]+/)
    .some((part) => /^ICD10(-CM)?:/i.test(part) && ICD10_PATTERN.test(part.split(':')[1] ?? ''));
}

/**
 * Whether a FHIR Condition is an active (or unstated) brain-tumour problem.
 * @param condition - the Condition
 */
export function isBrainTumourCondition(condition: Condition): boolean {
  const clinical = condition.clinicalStatus?.coding?.map((c) => c.code) ?? [];
  if (clinical.some((code) => code === 'resolved' || code === 'inactive' || code === 'remission')) return false;
  if (condition.verificationStatus?.coding?.some((c) => c.code === 'entered-in-error' || c.code === 'refuted'))
    return false;
  return isBrainTumourProblem({ codings: condition.code?.coding ?? [], text: conceptText(condition.code) });
}

function conceptText(concept: CodeableConcept | undefined): string {
  return [concept?.text, ...(concept?.coding?.map((c) => c.display) ?? [])].filter(Boolean).join(' ');
}

/** LOINC MR brain (without, with, without and with contrast) and CPT 70551–70553. */
const MRI_BRAIN_CODES: Record<string, ReadonlySet<string>> = {
  [LOINC]: new Set(['24588-6', '24589-4', '24590-2']),
  [CPT]: new Set(['70551', '70552', '70553']),
};
const MRI_BRAIN_TEXT = /\b(MRI?|MR|magnetic resonance)\b.*\b(brain|head|neuro)|\b(brain|head)\b.*\b(MRI?|MR)\b/i;

/**
 * Whether an order is a brain MRI.
 * @param order - a ServiceRequest (draft or signed)
 */
export function isBrainMriOrder(order: ServiceRequest): boolean {
  if (order.code?.coding?.some((c) => c.system && MRI_BRAIN_CODES[c.system]?.has(c.code ?? ''))) return true;
  return MRI_BRAIN_TEXT.test(conceptText(order.code));
}

/** The system of this service's own codes on orders. */
export const CDSS_CODE_SYSTEM = 'urn:cdss:codes';

/** The four MRI sequences the tumour model needs (BraTS channels), as order details. */
export const TUMOUR_PROTOCOL_SEQUENCES: readonly CodeableConcept[] = [
  { coding: [{ system: CDSS_CODE_SYSTEM, code: 'seq-t1', display: 'T1-weighted, pre-contrast' }] },
  {
    coding: [{ system: CDSS_CODE_SYSTEM, code: 'seq-t1c', display: 'T1-weighted, post-contrast (gadolinium)' }],
  },
  { coding: [{ system: CDSS_CODE_SYSTEM, code: 'seq-t2', display: 'T2-weighted' }] },
  { coding: [{ system: CDSS_CODE_SYSTEM, code: 'seq-flair', display: 'T2-FLAIR' }] },
];

/** The protocol marker on an order that carries it. */
export const TUMOUR_PROTOCOL_CODE: Coding = {
  system: CDSS_CODE_SYSTEM,
  code: 'brain-tumour-mri-protocol',
  display: 'Brain tumour MRI protocol: T1, T1 post-contrast, T2, FLAIR',
};

/** The code of an automatic AI analysis order. */
export const AUTO_ANALYSIS_CODE: Coding = {
  system: CDSS_CODE_SYSTEM,
  code: 'ai-tumour-segmentation',
  display: 'AI brain tumour segmentation and volumetry (not for clinical use)',
};

/**
 * Whether an order already asks for the four-sequence protocol.
 * @param order - a ServiceRequest
 */
export function hasTumourProtocol(order: ServiceRequest): boolean {
  return (order.orderDetail ?? []).some((detail) =>
    detail.coding?.some((c) => c.system === CDSS_CODE_SYSTEM && c.code === TUMOUR_PROTOCOL_CODE.code),
  );
}

/**
 * The order with the protocol added (its other details kept), and as MR brain without and with contrast.
 * @param order - a ServiceRequest
 */
export function withTumourProtocol(order: ServiceRequest): ServiceRequest {
  const contrast: Coding = { system: LOINC, code: '24590-2', display: 'MR Brain WO and W contrast IV' };
  const codings = order.code?.coding ?? [];
  return {
    ...order,
    code: {
      ...order.code,
      coding: codings.some((c) => c.system === LOINC && c.code === contrast.code) ? codings : [...codings, contrast],
    },
    orderDetail: [
      ...(order.orderDetail ?? []),
      { coding: [TUMOUR_PROTOCOL_CODE], text: TUMOUR_PROTOCOL_CODE.display },
      ...TUMOUR_PROTOCOL_SEQUENCES,
    ],
  };
}
