/**
 * Patient routes: OpenEMR-first writes, cache-aside reads, FHIR sync through the outbox, `patient.updated` events,
 * and an audit record for every read and write of patient data.
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  allergyListSchema,
  cachedPatientSchema,
  encounterListSchema,
  medicationListSchema,
  patientInputSchema,
  patientPageSchema,
  patientSchema,
  problemListSchema,
  vitalsListSchema,
  patientIdSchema,
  type ApiPatient,
  type PatientInput,
} from '../api-schemas.js';
import type { Patient as FhirPatient } from 'fhir/r4.js';
import { ApiError, notFound } from '../http/errors.js';
import {
  IDEMPOTENCY_ERRORS,
  idempotencyHeaders,
  idempotencyScope,
  type IdempotencyScope,
} from '../http/idempotency.js';
import { defineRoute, PreparedJson, type AnyRoute } from '../http/route.js';
import type { Auditor } from './auditor.js';
import type { EventBus } from '../events.js';
import type {
  ClinicalLists,
  FhirSync,
  IdempotentWrite,
  CachedRead,
  PatientRecords,
  ReadThroughCache,
  StateTransaction,
} from './ports.js';

extendZodWithOpenApi(z);

const idParams = z.object({ id: patientIdSchema });

/** Dependencies of the patient routes. */
export interface PatientRouteDeps {
  records: PatientRecords;
  cache: ReadThroughCache;
  fhir: FhirSync;
  bus: EventBus;
  auditor: Auditor;
}

const patientKey = (id: string): string => `patient:${id}`;

/**
 * The prepared answers of cached values (fresh, stale), built around the text the cache keeps for the value: a cached
 * value is frozen and replaced, never changed, so its answer's text, bytes and ETag are worked out once.
 */
const preparedAnswers = new WeakMap<object, { fresh?: PreparedJson; stale?: PreparedJson }>();

/** `{ data, stale }` of a cached read, with its JSON prepared once per cached value. */
function cachedAnswer<T>(
  value: T,
  read: CachedRead<unknown>,
): { body: { data: T; stale: boolean }; json?: PreparedJson } {
  const body = { data: value, stale: read.stale };
  // The cache keeps a text only for its (frozen) objects.
  if (read.json === undefined || typeof value !== 'object' || value === null) return { body };
  let answers = preparedAnswers.get(value);
  if (!answers) preparedAnswers.set(value, (answers = {}));
  const which = read.stale ? 'stale' : 'fresh';
  const json = (answers[which] ??= new PreparedJson(`{"data":${read.json},"stale":${read.stale}}`));
  return { body, json };
}

/**
 * The 409 of a suspected duplicate: an OperationOutcome (issue `duplicate`) with the candidates as contained FHIR
 * Patients (id = OpenEMR uuid, identifier = the record number), so the user can open one instead.
 * @param candidates - the existing patients
 */
export function duplicatePatient(candidates: readonly ApiPatient[]): ApiError {
  return new ApiError(
    409,
    'duplicate',
    `A patient with this name and birth date already exists (${candidates.length}); to create another one anyway, repeat the request with ?confirm=duplicate`,
    [],
    candidates.map((p): FhirPatient => ({
      resourceType: 'Patient',
      id: p.id,
      identifier: [{ type: { text: 'record number' }, value: p.pid }],
      name: [{ family: p.familyName, given: [p.givenName] }],
      birthDate: p.birthDate,
      gender: p.sex,
    })),
  );
}

/**
 * The patient routes.
 * @param deps - records, cache, FHIR sync, event bus and auditor
 */
export function patientRoutes(deps: PatientRouteDeps): AnyRoute[] {
  const { records, cache, fhir, bus, auditor } = deps;

  /** The FHIR sync of a written patient: committed with the write (see ReadThroughCache.write). */
  const syncToFhir = (patient: ApiPatient, transaction: StateTransaction): Promise<void> =>
    fhir.enqueue('patient', patient, transaction);

  async function announce(patient: ApiPatient): Promise<void> {
    await bus.publish({
      type: 'patient.updated',
      patientId: patient.id,
      data: { id: patient.id },
      time: new Date().toISOString(),
    });
  }

  /**
   * A create is idempotent by its key; an attempt whose outcome is unknown is read back: the patients matching the
   * input before the first attempt are recorded, and a match that was not among them is the one it created.
   */
  function idempotentCreate(scope: IdempotencyScope, input: PatientInput): IdempotentWrite<ApiPatient> {
    return {
      ...scope,
      prepare: async () => ({ before: await records.matching(input) }),
      async readBack(prepared) {
        const before = new Set((prepared as { before?: string[] } | undefined)?.before ?? []);
        const created = (await records.matching(input)).filter((id) => !before.has(id));
        if (created.length > 1)
          throw new ApiError(
            409,
            'conflict',
            'More than one patient matching this request was created since its first attempt; check them in the EMR',
          );
        return created[0] === undefined ? undefined : records.get(created[0]);
      },
    };
  }

  const listRoute = <K extends keyof ClinicalLists>(kind: K, schema: z.ZodType, summary: string): AnyRoute =>
    defineRoute({
      method: 'get',
      path: `/api/patients/{id}/${kind}`,
      operationId: `list${kind[0]!.toUpperCase()}${kind.slice(1)}`,
      summary,
      tags: ['patients'],
      access: { permission: 'patient:read' },
      params: idParams,
      response: { status: 200, description: summary, schema },
      errors: [404, 503],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `Patient/${params.id}/${kind}`, patientId: params.id },
          async () => {
            const read = await cache.read(`${patientKey(params.id)}:${kind}`, () => records.list(params.id, kind));
            return cachedAnswer(read.value, read);
          },
        ),
    });

  return [
    defineRoute({
      method: 'get',
      path: '/api/patients',
      operationId: 'searchPatients',
      summary: 'Search patients by name (from OpenEMR)',
      tags: ['patients'],
      access: { permission: 'patient:read' },
      query: z.strictObject({
        q: z.string().trim().max(100).optional(),
        limit: z.coerce.number().int().min(1).max(100).default(20),
        cursor: z.string().max(200).optional(),
      }),
      response: { status: 200, description: 'A page of patients', schema: patientPageSchema },
      errors: [503],
      handler: ({ query, principal, requestId }) =>
        auditor.around({ principal, requestId, action: 'search', resource: 'Patient' }, async () => {
          const result = await records.search(query);
          return { body: result };
        }),
    }),
    defineRoute({
      method: 'get',
      path: '/api/patients/{id}',
      operationId: 'getPatient',
      summary: 'Read a patient (cache first, then OpenEMR)',
      tags: ['patients'],
      access: { permission: 'patient:read' },
      params: idParams,
      response: {
        status: 200,
        description: 'The patient, flagged stale when OpenEMR was unreachable',
        schema: cachedPatientSchema,
      },
      errors: [404, 503],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `Patient/${params.id}`, patientId: params.id },
          async () => {
            const read = await cache.read(patientKey(params.id), async () => (await records.get(params.id)) ?? null);
            if (!read.value) throw notFound('Patient');
            return cachedAnswer(read.value, read);
          },
        ),
    }),
    defineRoute({
      method: 'post',
      path: '/api/patients',
      operationId: 'createPatient',
      summary: 'Create a patient in OpenEMR, then cache it and sync it to FHIR',
      tags: ['patients'],
      access: { permission: 'patient:write' },
      query: z.strictObject({
        confirm: z
          .literal('duplicate')
          .optional()
          .openapi({ description: 'Create even though a patient with the same name and birth date exists' }),
      }),
      headers: idempotencyHeaders,
      body: patientInputSchema,
      response: { status: 201, description: 'The created patient', schema: patientSchema },
      errors: [409, 503, ...IDEMPOTENCY_ERRORS],
      handler: async ({ body, query, principal, requestId, req }) => {
        const scope = idempotencyScope(req, principal, body);
        return auditor.around({ principal, requestId, action: 'create', resource: 'Patient' }, async (audit) => {
          // Checked inside the write, so a replayed request (idempotency key) answers as the first one did.
          const createUnlessDuplicate = async (): Promise<ApiPatient> => {
            if (query.confirm !== 'duplicate') {
              const candidates = await records.duplicates(body);
              if (candidates.length > 0) throw duplicatePatient(candidates);
            }
            return records.create(body);
          };
          const { value: patient, replayed } = await cache.write(createUnlessDuplicate, {
            key: (created) => patientKey(created.id),
            schema: patientSchema,
            commit: syncToFhir,
            ...(scope ? { idempotency: idempotentCreate(scope, body) } : {}),
          });
          audit.patientId = patient.id;
          audit.resource = `Patient/${patient.id}`;
          if (!replayed) await announce(patient);
          return { status: 201, body: patient, headers: { Location: `/api/patients/${patient.id}` } };
        });
      },
    }),
    defineRoute({
      method: 'put',
      path: '/api/patients/{id}',
      operationId: 'updatePatient',
      summary: 'Replace a patient’s demographics in OpenEMR, then the cache and FHIR',
      tags: ['patients'],
      access: { permission: 'patient:write' },
      params: idParams,
      body: patientInputSchema,
      response: { status: 200, description: 'The updated patient', schema: patientSchema },
      errors: [404, 409, 503],
      handler: ({ params, body, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'update', resource: `Patient/${params.id}`, patientId: params.id },
          async () => {
            // A missing patient: OpenEMR refuses the write, which answers 404 (see http/errors.ts).
            const { value: patient } = await cache.write(() => records.update(params.id, body), {
              key: () => patientKey(params.id),
              schema: patientSchema,
              commit: syncToFhir,
            });
            await announce(patient);
            return { body: patient };
          },
        ),
    }),
    listRoute('encounters', encounterListSchema, 'A patient’s encounters'),
    listRoute('problems', problemListSchema, 'A patient’s medical problems'),
    listRoute('allergies', allergyListSchema, 'A patient’s allergies'),
    listRoute('medications', medicationListSchema, 'A patient’s medications'),
    listRoute('vitals', vitalsListSchema, 'A patient’s vital signs'),
  ];
}
