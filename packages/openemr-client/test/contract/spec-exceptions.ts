/**
 * The places where OpenEMR's OpenAPI spec is wrong and the contract follows OpenEMR's code instead.
 * Each entry cites shared/notes/openemr.md or a recorded exchange (shared/reference/openemr/recorded-*). The contract suite fails on any spec violation that none of
 * these explains, and lists which of them were exercised.
 */
import type { Exchange, Violation } from './openapi-validator.js';

/** One documented exception. */
export interface SpecException {
  id: string;
  /** Why the spec is wrong, with its source. */
  reason: string;
  matches(v: Violation, ex: Exchange, version: '7.0' | '8.0' | '8.2'): boolean;
}

const LEGACY_RAW = /\/(vital|soap_note|medication|appointment)(\/|$)|^\/api\/appointment/;

const onlyErrors = (v: Violation, pred: (path: string, keyword: string) => boolean): boolean =>
  v.errors !== undefined && v.errors.length > 0 && v.errors.every((e) => pred(e.instancePath, e.keyword));

/** The list. Keep it short: every entry must be a real, cited difference. */
export const SPEC_EXCEPTIONS: readonly SpecException[] = [
  {
    id: 'envelope-data-object',
    reason:
      'notes §3.2: the generic `standard` response says `data` is an array; single-resource and create endpoints return an object.',
    matches: (v) => v.kind === 'response-body' && onlyErrors(v, (p, k) => p === '/data' && k === 'type'),
  },
  {
    id: 'validation-errors-object',
    reason: 'notes §3.2: `validationErrors` is an object keyed by field (Particle), not an array of objects.',
    matches: (v) =>
      v.kind === 'response-body' &&
      onlyErrors(v, (p, k) => (p === '/validationErrors' || p === '/data') && k === 'type'),
  },
  {
    id: 'legacy-raw-body',
    reason:
      'notes §3.2: legacy controllers (vitals, SOAP notes, medication lists, appointments) answer raw rows, arrays, `{vid,fid}` or `true`, not the envelope the spec shows.',
    matches: (v) =>
      v.kind === 'response-body' && LEGACY_RAW.test(v.template) && onlyErrors(v, (p, k) => p === '' && k === 'type'),
  },
  {
    id: 'create-201',
    reason:
      'notes §3.2, §3.3, §4.1: creates answer 201 (patient, practitioner, vitals, SOAP note, medication; FHIR Patient/Practitioner/Organization; 7.0 encounter/allergy/problem) where the spec declares 200.',
    matches: (v, ex) => v.kind === 'undeclared-status' && ex.status === 201 && v.method === 'POST',
  },
  {
    id: 'empty-or-missing-404',
    reason:
      'notes §3.2, §3.3, §4.3: empty legacy lists and unknown records answer 404 (empty body on 8.x, `null` on 7.0; the envelope with `data: []` on envelope routes) where the spec declares no 404.',
    matches: (v, ex) => v.kind === 'undeclared-status' && ex.status === 404,
  },
  {
    id: 'validation-400',
    reason:
      'notes §3.3: validation failures and unknown uuids answer 400 with `validationErrors` on routes whose spec declares only 200/401 (patient, encounter, practitioner).',
    matches: (v, ex) => v.kind === 'undeclared-status' && ex.status === 400,
  },
  {
    id: 'auth-403',
    reason:
      'notes §2.7: on 8.x a token without `api:oemr` (or an ACL denial) answers 403 with the kernel error body; the spec declares no 403.',
    matches: (v, ex, version) => v.kind === 'undeclared-status' && ex.status === 403 && version !== '7.0',
  },
  {
    id: 'fhir-update-200',
    reason:
      'notes §4.1: `PUT /fhir/{Patient,Practitioner,Organization}/{id}` answers 200 with the resource; the spec declares 201.',
    matches: (v, ex) =>
      v.kind === 'undeclared-status' && ex.status === 200 && v.method === 'PUT' && v.template.startsWith('/fhir/'),
  },
  {
    id: 'partial-update',
    reason:
      'notes §3.4: PUT on patient, encounter, medical problem, allergy, medication and practitioner is a partial update ("same fields, none required"); the spec reuses the POST schema with its `required` list.',
    matches: (v) =>
      v.side === 'request' && v.kind === 'body' && v.method === 'PUT' && onlyErrors(v, (_p, k) => k === 'required'),
  },
  {
    id: 'fhir-404-empty-array',
    reason: 'notes §4.3: a FHIR read of an unknown id answers 404 with the body `[]`; the spec declares an object.',
    matches: (v, ex) =>
      v.kind === 'response-body' && ex.status === 404 && v.template.startsWith('/fhir/') && ex.responseBody === '[]',
  },
  {
    id: 'allergy-begdate-optional',
    reason:
      'notes §3.4 (Allergy): only `title` is required by the validator; the spec lists `begdate` as required in `api_allergy_request`.',
    matches: (v) =>
      v.side === 'request' &&
      v.kind === 'body' &&
      v.template.includes('/allergy') &&
      onlyErrors(v, (_p, k) => k === 'required') &&
      (v.errors ?? []).every((e) => (e.params as { missingProperty?: string }).missingProperty === 'begdate'),
  },
  {
    id: 'prescription-patient-uuid-filter',
    reason:
      'notes §3.4 (Prescription): the list is filtered with `?patient.uuid=<puuid>`, which the spec does not document.',
    matches: (v, ex) =>
      v.kind === 'query' &&
      v.template === '/api/prescription' &&
      new URL(ex.url, 'http://x').searchParams.has('patient.uuid') &&
      v.detail.includes('patient.uuid'),
  },
  {
    id: 'document-upload-500',
    reason:
      'recorded-8.0.0 file 61: a document upload that stores the file answers 500 (the spec declares 200, 400, 401); the client confirms by listing.',
    matches: (v, ex) =>
      v.kind === 'undeclared-status' && ex.status === 500 && v.method === 'POST' && v.template.endsWith('/document'),
  },
  {
    id: 'document-list-bare-array',
    reason: 'recorded-8.0.0 file 63: a category listing answers a bare array of documents, not the envelope.',
    matches: (v, ex) =>
      v.kind === 'response-body' &&
      ex.method === 'GET' &&
      v.template.endsWith('/document') &&
      onlyErrors(v, (p, k) => p === '' && k === 'type'),
  },
  {
    id: 'fhir-count-offset',
    reason: 'notes §4.3: FHIR search honours `_count` (and `_offset` on Patient), which the spec does not list.',
    matches: (v) => v.kind === 'query' && v.template.startsWith('/fhir/') && /_count|_offset/.test(v.detail),
  },
];

/**
 * The exception that explains a violation, if any.
 * @param v - the violation
 * @param ex - its exchange
 * @param version - the profile
 */
export function explain(v: Violation, ex: Exchange, version: '7.0' | '8.0' | '8.2'): SpecException | undefined {
  return SPEC_EXCEPTIONS.find((e) => e.matches(v, ex, version));
}
