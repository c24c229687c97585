/**
 * The FHIR R4 API of OpenEMR (`/apis/{site}/fhir`), with its quirks hidden (notes §4): search Bundles
 * are `collection`s whose `total` counts only the page and that carry no `next` link, so the client
 * pages Patient with `_offset` itself and reads other types in one request; unknown search parameters
 * make OpenEMR return an empty Bundle, so the client refuses them; an unknown id is a 404 with body `[]`;
 * `POST /fhir/Patient` answers `{pid, uuid}` rather than the resource.
 * @packageDocumentation
 */
import { HttpError, ValidationError, type HttpTransport } from '@cdss/core';
import type {
  AllergyIntolerance,
  Bundle,
  CapabilityStatement,
  Condition,
  DocumentReference,
  Encounter,
  MedicationRequest,
  Observation,
  Organization,
  Patient,
  Practitioner,
} from 'fhir/r4.js';
import { z } from 'zod';
import type { DocumentContent } from './documents.js';
import { particleIssues, sendWithSession, unreadableAnswer, type RawAnswer, type Relogin } from './http.js';
import type { OpenEmrProfile } from './profiles.js';
import { confirmedWrite } from './shared.js';
import {
  smartConfigurationSchema,
  fhirBundleSchema,
  fhirCreatedSchema,
  fhirResourceSchema,
  uuidSchema,
  type SmartConfiguration,
} from './schemas.js';

/** FHIR resource types the client reads, with their R4 types. */
export interface FhirResourceTypes {
  Patient: Patient;
  Encounter: Encounter;
  Condition: Condition;
  AllergyIntolerance: AllergyIntolerance;
  MedicationRequest: MedicationRequest;
  Observation: Observation;
  Practitioner: Practitioner;
  Organization: Organization;
  DocumentReference: DocumentReference;
}

/** A readable type. */
export type FhirResourceType = keyof FhirResourceTypes;

/** Types OpenEMR lets clients create and update over FHIR. */
export type FhirWritableType = 'Patient' | 'Practitioner' | 'Organization';

/** Search parameters OpenEMR supports per type (notes §4.2); others silently empty the result. */
export const FHIR_SEARCH_PARAMETERS: Readonly<Record<FhirResourceType, readonly string[]>> = {
  Patient: [
    '_id',
    '_lastUpdated',
    'identifier',
    'name',
    'family',
    'given',
    'birthdate',
    'gender',
    'address',
    'address-city',
    'address-postalcode',
    'address-state',
    'email',
    'phone',
    'telecom',
    'generalPractitioner',
  ],
  Encounter: ['_id', '_lastUpdated', 'patient', 'date'],
  Condition: ['_id', '_lastUpdated', 'patient', 'category'],
  AllergyIntolerance: ['_id', '_lastUpdated', 'patient'],
  MedicationRequest: ['_id', '_lastUpdated', 'patient', 'intent', 'status'],
  Observation: ['_id', '_lastUpdated', 'patient', 'code', 'category', 'date'],
  Practitioner: [
    '_id',
    '_lastUpdated',
    'name',
    'family',
    'given',
    'identifier',
    'active',
    'email',
    'phone',
    'telecom',
    'address',
  ],
  Organization: [
    '_id',
    '_lastUpdated',
    'name',
    'email',
    'phone',
    'telecom',
    'address',
    'address-city',
    'address-postalcode',
    'address-state',
  ],
  DocumentReference: ['_id', '_lastUpdated', 'patient', 'category', 'date', 'type'],
};

const TYPES = Object.keys(FHIR_SEARCH_PARAMETERS) as FhirResourceType[];

/** Search parameter values: repeated keys as arrays. */
export type FhirSearchParams = Readonly<Record<string, string | number | readonly (string | number)[]>>;

/** Result of a FHIR create. */
export interface FhirCreated {
  /** The new resource's id (OpenEMR uuid). */
  id: string;
  /** The numeric pid, for `POST /fhir/Patient`. */
  pid?: number | undefined;
}

const fhirName = z.looseObject({
  family: z.string().min(2, 'family name must be at least 2 characters').max(255),
  given: z.array(z.string().min(1)).min(1, 'needs a given name'),
});

/** What OpenEMR needs in a FHIR write, checked before sending (its validator's rules after mapping). */
const npiIdentifier = z
  .array(z.looseObject({ system: z.string().optional(), value: z.string().optional() }))
  .refine(
    (ids) => ids.some((i) => i.system === 'http://hl7.org/fhir/sid/us-npi' && /^\d{10,15}$/.test(i.value ?? '')),
    'needs an NPI identifier of 10-15 digits',
  );

const FHIR_WRITE_SCHEMAS: Record<FhirWritableType, z.ZodType> = {
  Patient: z.looseObject({
    resourceType: z.literal('Patient'),
    name: z.array(fhirName).min(1),
    gender: z.enum(['male', 'female', 'other', 'unknown']),
    birthDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD'),
  }),
  Practitioner: z.looseObject({
    resourceType: z.literal('Practitioner'),
    name: z.array(fhirName.extend({ given: z.array(z.string().min(2)).min(1) })).min(1),
    identifier: npiIdentifier,
  }),
  // OpenEMR stores an Organization as a facility, whose NPI is required (recorded-8.0.0 file 59).
  Organization: z.looseObject({
    resourceType: z.literal('Organization'),
    name: z.string().min(2).max(255),
    identifier: npiIdentifier,
  }),
};

function checkWrite(resource: { resourceType: string }): void {
  checkType(resource.resourceType, ['Patient', 'Practitioner', 'Organization']);
  const schema = FHIR_WRITE_SCHEMAS[resource.resourceType as FhirWritableType];
  const parsed = schema.safeParse(resource);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid FHIR ${resource.resourceType}`);
}

function checkType(type: string, allowed: readonly string[]): void {
  if (!allowed.includes(type)) {
    throw new ValidationError('Unsupported FHIR resource type', [
      { path: 'resourceType', message: `must be one of ${allowed.join(', ')}`, code: 'invalid_value' },
    ]);
  }
}

/** `client.fhir`. */
export class FhirNamespace {
  constructor(
    private readonly transport: HttpTransport,
    private readonly relogin?: Relogin | undefined,
    private readonly profile?: ((signal?: AbortSignal) => Promise<OpenEmrProfile>) | undefined,
  ) {}

  private async get(
    path: string,
    query: FhirSearchParams | undefined,
    signal: AbortSignal | undefined,
  ): Promise<RawAnswer> {
    const res = await sendWithSession(
      this.transport,
      {
        method: 'GET',
        path: `fhir/${path}`,
        query,
        signal,
        headers: { accept: 'application/fhir+json, application/json' },
      },
      this.relogin,
    );
    if (res.status === 404 || (res.status < 300 && res.text === undefined)) return res;
    throw failure('GET', path, res);
  }

  /** Sends a FHIR write; a 400 becomes a {@link ValidationError} from its OperationOutcome or Particle errors. */
  private async write(
    method: 'POST' | 'PUT',
    path: string,
    resource: { resourceType: string },
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const res = await sendWithSession(
      this.transport,
      {
        method,
        path,
        body: resource,
        signal,
        headers: { 'content-type': 'application/fhir+json', accept: 'application/json' },
      },
      this.relogin,
    );
    if (res.status === 400) throw outcomeError(res.data, `OpenEMR refused the ${resource.resourceType}`);
    if (res.status >= 300 || res.text !== undefined) throw failure(method, path, res);
    return res.data;
  }

  /**
   * Reads a resource; `undefined` when OpenEMR has none (404 `[]`).
   * @param type - the resource type
   * @param id - the resource id (a uuid)
   * @throws {@link ValidationError} for a bad type or id, or a malformed answer
   */
  async read<K extends FhirResourceType>(
    type: K,
    id: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<FhirResourceTypes[K] | undefined> {
    checkType(type, TYPES);
    checkId(id);
    const res = await this.get(`${type}/${id}`, undefined, options.signal);
    if (res.status === 404) return undefined;
    const parsed = fhirResourceSchema.extend({ resourceType: z.literal(type) }).safeParse(res.data);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid FHIR ${type} from OpenEMR`);
    return parsed.data as unknown as FhirResourceTypes[K];
  }

  /**
   * One search request; returns OpenEMR's Bundle as is (`collection`, page-sized `total`).
   * @param type - the resource type
   * @param params - search parameters (only those OpenEMR supports for `type`)
   * @throws {@link ValidationError} naming an unsupported parameter (OpenEMR would silently return nothing)
   */
  async search<K extends FhirResourceType>(
    type: K,
    params: FhirSearchParams = {},
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<Bundle<FhirResourceTypes[K]>> {
    checkType(type, TYPES);
    const allowed = [
      ...FHIR_SEARCH_PARAMETERS[type],
      '_count',
      ...(type === 'Patient' ? ['_offset'] : []),
      '_sort',
      '_revinclude',
    ];
    const unknown = Object.keys(params).filter((k) => !allowed.includes(k.split(':')[0] ?? k));
    if (unknown.length > 0) {
      throw new ValidationError(
        `Unsupported FHIR ${type} search parameter`,
        unknown.map((k) => ({ path: k, message: `OpenEMR does not support ${k} on ${type}`, code: 'unsupported' })),
      );
    }
    const res = await this.get(type, params, options.signal);
    if (res.status === 404)
      throw new ValidationError(`OpenEMR has no FHIR ${type} endpoint`, [
        { path: 'resourceType', message: 'not found', code: 'not_found' },
      ]);
    const parsed = fhirBundleSchema.safeParse(res.data);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid FHIR Bundle from OpenEMR`);
    for (const entry of parsed.data.entry ?? []) {
      if (entry.resource.resourceType !== type && entry.resource.resourceType !== 'Provenance') {
        throw new ValidationError('Invalid FHIR Bundle from OpenEMR', [
          { path: 'entry.resource.resourceType', message: `expected ${type}`, code: 'invalid_value' },
        ]);
      }
    }
    return parsed.data as unknown as Bundle<FhirResourceTypes[K]>;
  }

  /**
   * Every matching resource. Patient is paged with `_offset`/`_count` (OpenEMR gives no `next` link and
   * `total` counts only the page, recorded-8.0.0 files 97, 98); other types cannot be paged by OpenEMR, so
   * they come in one request.
   * @param type - the resource type
   * @param params - search parameters
   * @param options - `pageSize` for Patient (default 100)
   */
  async *searchAll<K extends FhirResourceType>(
    type: K,
    params: FhirSearchParams = {},
    options: { pageSize?: number | undefined; signal?: AbortSignal | undefined } = {},
  ): AsyncGenerator<FhirResourceTypes[K], void, undefined> {
    const own = (b: Bundle<FhirResourceTypes[K]>): FhirResourceTypes[K][] =>
      (b.entry ?? [])
        .map((e) => e.resource)
        .filter((r): r is FhirResourceTypes[K] => r !== undefined && r.resourceType === type);
    if (type !== 'Patient') {
      const { _count: _ignored, ...rest } = params;
      yield* own(await this.search(type, rest, options));
      return;
    }
    const size = options.pageSize ?? 100;
    for (let offset = 0; ; offset += size) {
      const page = own(await this.search(type, { ...params, _count: size, _offset: offset }, options));
      yield* page;
      if (page.length < size) return;
    }
  }

  /**
   * Creates a Patient, Practitioner or Organization (the only FHIR writes OpenEMR allows). OpenEMR ignores a
   * Patient name without `use: "official"` (recorded-8.0.0 file 57), so the client marks the first name
   * official when none is; an Organization needs an NPI identifier (file 59).
   * @param resource - the resource
   * @returns its new id (and `pid` for a Patient): OpenEMR does not return the resource
   */
  async create(
    resource: FhirResourceTypes[FhirWritableType],
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<FhirCreated> {
    checkWrite(resource);
    const body = resource.resourceType === 'Patient' ? withOfficialName(resource) : resource;
    return confirmedWrite(
      `FHIR ${resource.resourceType} create`,
      async () => {
        const data = await this.write('POST', `fhir/${resource.resourceType}`, body, options.signal);
        const parsed = fhirCreatedSchema.safeParse(data);
        if (!parsed.success)
          throw unreadableAnswer(
            ValidationError.fromZod(parsed.error, `Invalid answer to FHIR ${resource.resourceType} create`),
          );
        return { id: parsed.data.uuid, pid: resource.resourceType === 'Patient' ? parsed.data.pid : undefined };
      },
      undefined,
    );
  }

  /**
   * Updates a Patient, Practitioner or Organization. On 8.0.0 a Patient PUT of the resource as read answers
   * 500 (recorded-8.0.0 file 58): the client sends it without `meta`, `text` and `extension` there, and after
   * an unknown outcome reads it back instead of re-sending.
   * @param resource - the resource, with its `id`
   * @returns the stored resource
   */
  async update<R extends FhirResourceTypes[FhirWritableType]>(
    resource: R,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<R> {
    checkWrite(resource);
    const id = resource.id;
    if (id === undefined || !uuidSchema.safeParse(id).success) {
      throw new ValidationError('Invalid FHIR resource', [
        { path: 'id', message: 'must be the resource uuid', code: 'invalid_format' },
      ]);
    }
    const profile = await this.profile?.(options.signal);
    let body: { resourceType: string } = resource;
    if (resource.resourceType === 'Patient') {
      body = withOfficialName(resource);
      if (profile?.notes['fhir.update'] !== undefined) {
        const { meta: _meta, text: _text, extension: _extension, ...rest } = body as Patient;
        body = rest as { resourceType: string };
      }
    }
    const type = resource.resourceType as FhirWritableType;
    return confirmedWrite(
      `FHIR ${type} update`,
      async () => {
        const data = await this.write('PUT', `fhir/${type}/${id}`, body, options.signal);
        const parsed = fhirResourceSchema.extend({ resourceType: z.literal(type) }).safeParse(data);
        if (!parsed.success)
          throw unreadableAnswer(ValidationError.fromZod(parsed.error, `Invalid answer to FHIR ${type} update`));
        return parsed.data as unknown as R;
      },
      async () => {
        const stored = await this.read(type, id, options);
        return stored !== undefined && sameCore(stored, resource) ? (stored as R) : undefined;
      },
    );
  }

  /**
   * A document's file through `Binary/{id}`: OpenEMR answers the raw bytes (not a FHIR Binary), whatever the
   * `Accept` header says (recorded-8.0.0 file 67). Needs `user/Binary.read` and, for users, the `admin/users` ACL.
   * @param id - the document's uuid
   * @returns the content, or `undefined` when there is none
   */
  async binary(id: string, options: { signal?: AbortSignal | undefined } = {}): Promise<DocumentContent | undefined> {
    checkId(id);
    const res = await sendWithSession(
      this.transport,
      { method: 'GET', path: `fhir/Binary/${id}`, headers: { accept: '*/*' }, signal: options.signal },
      this.relogin,
      true,
    );
    if (res.status === 404) return undefined;
    if (res.status >= 300 || res.bytes === undefined) throw failure('GET', `Binary/${id}`, res);
    const disposition = res.headers['content-disposition'] ?? '';
    const filename = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)?.[1];
    return {
      content: res.bytes,
      contentType: (res.headers['content-type'] ?? 'application/octet-stream').split(';')[0]?.trim() ?? '',
      filename: filename === undefined ? undefined : decodeURIComponent(filename),
    };
  }

  /** The CapabilityStatement (`/fhir/metadata`, no auth needed). */
  async capabilities(options: { signal?: AbortSignal | undefined } = {}): Promise<CapabilityStatement> {
    const res = await this.get('metadata', undefined, options.signal);
    const parsed = fhirResourceSchema.extend({ resourceType: z.literal('CapabilityStatement') }).safeParse(res.data);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid CapabilityStatement from OpenEMR');
    return parsed.data as unknown as CapabilityStatement;
  }

  /** SMART configuration (`/fhir/.well-known/smart-configuration`, no auth needed). */
  async smartConfiguration(options: { signal?: AbortSignal | undefined } = {}): Promise<SmartConfiguration> {
    const res = await this.get('.well-known/smart-configuration', undefined, options.signal);
    const parsed = smartConfigurationSchema.safeParse(res.data);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid SMART configuration from OpenEMR');
    return parsed.data;
  }
}

function checkId(id: string): void {
  if (!uuidSchema.safeParse(id).success)
    throw new ValidationError('Invalid FHIR id', [{ path: 'id', message: 'must be a UUID', code: 'invalid_format' }]);
}

/** A Patient whose first name is `official` when none is (OpenEMR maps only the official name). */
function withOfficialName<P extends Patient>(patient: P): P {
  const names = patient.name ?? [];
  if (names.length === 0 || names.some((n) => n.use === 'official')) return patient;
  return { ...patient, name: names.map((n, i) => (i === 0 ? { ...n, use: 'official' as const } : n)) };
}

/** Whether the stored resource has the names, gender and birth date that were sent (a read-back check). */
function sameCore(stored: object, sent: object): boolean {
  const pick = (r: object): string => {
    const x = r as { name?: unknown; gender?: unknown; birthDate?: unknown };
    const names = Array.isArray(x.name)
      ? (x.name as { family?: unknown; given?: unknown }[]).map((n) => [n.family, n.given])
      : x.name;
    return JSON.stringify([names, x.gender, x.birthDate]);
  };
  return pick(stored) === pick(sent);
}

/** The error for a FHIR answer that is neither success nor a refusal. */
function failure(method: string, path: string, res: RawAnswer): HttpError {
  return new HttpError({
    method,
    url: res.url,
    status: res.status,
    responseBody: res.data ?? res.text?.slice(0, 2000),
    responseHeaders: res.headers,
    message:
      res.text !== undefined && res.status < 300
        ? `OpenEMR failed FHIR ${method} ${path}: it answered a non-JSON page`
        : `OpenEMR answered ${res.status} to FHIR ${method} ${path}`,
    retryable: false,
  });
}

const outcomeSchema = z.looseObject({
  resourceType: z.literal('OperationOutcome'),
  issue: z.array(
    z.looseObject({
      diagnostics: z.string().optional(),
      code: z.string().optional(),
      expression: z.array(z.string()).optional(),
    }),
  ),
});

function outcomeError(body: unknown, message: string): ValidationError {
  // 8.0.0 answers some refusals with a bare `{validationErrors}` instead of an OperationOutcome (files 57, 59).
  const bare = z.looseObject({ validationErrors: z.unknown() }).safeParse(body);
  if (bare.success && (body as { resourceType?: unknown }).resourceType === undefined)
    return new ValidationError(message, particleIssues(bare.data.validationErrors));
  const parsed = outcomeSchema.safeParse(body);
  if (!parsed.success)
    return new ValidationError(message, [{ path: '', message: 'OpenEMR answered 400', code: 'server' }]);
  const issues = parsed.data.issue.flatMap((i) => {
    // OpenEMR puts its Particle errors, JSON-encoded, in `diagnostics`: name the fields when it does.
    try {
      const inner = JSON.parse(i.diagnostics ?? '') as unknown;
      if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
        return Object.entries(inner as Record<string, unknown>).map(([field, v]) => ({
          path: field,
          message: typeof v === 'string' ? v : Object.values(v as Record<string, string>).join('; '),
          code: i.code ?? 'invalid',
        }));
      }
    } catch {
      // plain text diagnostics
    }
    return [{ path: i.expression?.[0] ?? '', message: i.diagnostics ?? 'invalid', code: i.code ?? 'invalid' }];
  });
  return new ValidationError(message, issues);
}
