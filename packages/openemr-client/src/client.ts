/**
 * The OpenEMR client: resource namespaces over one `@cdss/core` HttpTransport, with OpenEMR's quirks
 * hidden (shared/notes/openemr.md): numeric pid/eid vs uuid routes, envelopes vs raw bodies, validation
 * errors as {@link ValidationError}, empty lists as `[]`, success decided from the body, date formats,
 * and the 7.0 / 8.x differences selected by `version`.
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import {
  CdssError,
  HttpTransport,
  ValidationError,
  bearerAuth,
  oauth2Auth,
  systemClock,
  type AuthStrategy,
  type Clock,
  type HttpTransportOptions,
  type Logger,
  type RetryPolicy,
  type RetryPolicyOptions,
} from '@cdss/core';
import { z } from 'zod';
import { FhirNamespace } from './fhir.js';
import { NOT_FOUND, OpenEmrConflictError, OpenEmrNotFoundError, StandardApiCaller } from './http.js';
import {
  OpenEmrOAuth,
  createClientCredentialsTokenProvider,
  createPasswordTokenProvider,
  createRefreshTokenProvider,
  type ClientCredentialsInput,
} from './oauth.js';
import {
  allergyCreateSchema,
  allergyUpdateSchema,
  appointmentCreateSchema,
  appointmentSchema,
  encounterCreateSchema,
  encounterSchema,
  encounterUpdateSchema,
  idInputSchema,
  issueCreatedSchema,
  listItemSchema,
  medicalProblemCreateSchema,
  medicalProblemUpdateSchema,
  medicationCreateSchema,
  medicationUpdateSchema,
  medicationWrittenSchema,
  patientCreateSchema,
  patientCreatedSchema,
  patientSchema,
  patientSearchSchema,
  patientUpdateSchema,
  practitionerCreateSchema,
  practitionerSchema,
  practitionerUpdateSchema,
  prescriptionCreateSchema,
  prescriptionSchema,
  procedureSchema,
  soapNoteCreatedSchema,
  soapNoteInputSchema,
  soapNoteSchema,
  uuidSchema,
  vitalCreatedSchema,
  vitalInputSchema,
  vitalSchema,
  type Allergy,
  type AllergyCreateInput,
  type AllergyUpdateInput,
  type Appointment,
  type AppointmentCreateInput,
  type Encounter,
  type EncounterCreateInput,
  type EncounterUpdateInput,
  type IssueCreated,
  type MedicalProblem,
  type MedicalProblemCreateInput,
  type MedicalProblemUpdateInput,
  type Medication,
  type MedicationCreateInput,
  type MedicationUpdateInput,
  type Patient,
  type PatientCreateInput,
  type PatientCreated,
  type PatientSearch,
  type PatientUpdateInput,
  type Practitioner,
  type PractitionerCreateInput,
  type PractitionerUpdateInput,
  type Prescription,
  type PrescriptionCreateInput,
  type Procedure,
  type SoapNote,
  type SoapNoteCreated,
  type SoapNoteInput,
  type TokenSet,
  type Vital,
  type VitalCreated,
  type VitalInput,
} from './schemas.js';

/** The OpenEMR version whose API the client talks to. */
export type OpenEmrVersion = '7.0' | '8';

/** How the client authenticates. */
export type OpenEmrAuthConfig =
  | {
      /** Password grant (clinician `users` role; the only headless way to a `/api` token). */
      kind: 'password';
      clientId: string;
      clientSecret?: string | undefined;
      username: string;
      password: string;
      /** Scopes, e.g. {@link CDSS_SCOPES}. Include `offline_access` to refresh instead of logging in again. */
      scope: string | readonly string[];
      /** Called with every token set (persist the rotated refresh token; never log it). */
      onTokens?: ((tokens: TokenSet) => void) | undefined;
    }
  | {
      /** A refresh token from an interactive authorization-code login. */
      kind: 'refreshToken';
      clientId: string;
      clientSecret?: string | undefined;
      refreshToken: string;
      onTokens?: ((tokens: TokenSet) => void) | undefined;
    }
  | ({
      /** Client credentials with an RS384 assertion, for `system/*` FHIR scopes (FHIR only). */
      kind: 'clientCredentials';
      clientId: string;
    } & ClientCredentialsInput)
  | {
      /** A bearer token you manage. */
      kind: 'bearer';
      token: string | (() => string | Promise<string>);
    };

/** Options of {@link createOpenEmrClient}. Only `baseUrl` is required. */
export interface OpenEmrClientOptions {
  /** The server root, e.g. `https://emr.example` (the client adds `/apis/{site}` and `/oauth2/{site}`). */
  baseUrl: string;
  /** Multisite name. Default `default`. */
  site?: string | undefined;
  /** Version profile. Default `'8'`. */
  version?: OpenEmrVersion | undefined;
  /** Authentication: a config, or any `AuthStrategy`. Default none (only public endpoints work). */
  auth?: OpenEmrAuthConfig | AuthStrategy | undefined;
  /** Transport for `/apis/{site}`; when given, `auth`, `retry`, `timeoutMs`, `headers`, `axios` are its business. */
  transport?: HttpTransport | undefined;
  /** Retry policy (idempotent requests). Default core's (2 retries with backoff). */
  retry?: RetryPolicy | RetryPolicyOptions | false | undefined;
  /** Per-attempt timeout. Default 30 000 ms. */
  timeoutMs?: number | undefined;
  /** Extra headers on every request. */
  headers?: Record<string, string> | undefined;
  /** Logger (never receives tokens or PHI from the client). */
  logger?: Logger | undefined;
  /** Clock, for token expiry. Default the system clock. */
  clock?: Clock | undefined;
  /** An axios instance to send with. */
  axios?: HttpTransportOptions['axios'];
}

const optionsSchema = z.object({
  baseUrl: z.url({ protocol: /^https?$/ }),
  site: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
  version: z.enum(['7.0', '8']).optional(),
  timeoutMs: z.number().positive().optional(),
});

/** Per-call options of writes that support the optimistic lost-update check. */
export interface WriteOptions {
  /**
   * Opt-in optimistic check: the {@link recordVersion} of the record as you read it. The client reads the
   * record again just before writing and refuses with {@link OpenEmrConflictError} if it changed.
   * OpenEMR ignores `If-Match`, so a write that lands between that read and this write is not detected.
   */
  expectedVersion?: string | undefined;
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
}

/** Per-call options of reads. */
export interface ReadOptions {
  /** Cancels the call. */
  signal?: AbortSignal | undefined;
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/**
 * A version of a record for the optimistic lost-update check: a hash of its content as read.
 * @param record - a record returned by this client
 * @returns a short hex string
 */
export function recordVersion(record: object): string {
  return createHash('sha256').update(stable(record)).digest('hex').slice(0, 16);
}

function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, `Invalid ${what}`);
  return parsed.data;
}

const id = (value: number | string, field: string): string => {
  const parsed = idInputSchema.safeParse(value);
  if (!parsed.success)
    throw new ValidationError(`Invalid ${field}`, [
      { path: field, message: 'must be a positive numeric id', code: 'invalid_format' },
    ]);
  return parsed.data;
};
const uuid = (value: string, field: string): string => {
  const parsed = uuidSchema.safeParse(value);
  if (!parsed.success)
    throw new ValidationError(`Invalid ${field}`, [{ path: field, message: 'must be a UUID', code: 'invalid_format' }]);
  return parsed.data;
};

/** A page of patients. */
export interface PatientPage {
  patients: Patient[];
  /** Whether another page follows. */
  hasMore: boolean;
}

/** Context shared by the namespaces. */
interface Ctx {
  api: StandardApiCaller;
  version: OpenEmrVersion;
}

/** Refuses the write with {@link OpenEmrConflictError} when `current` is not the version the caller read. */
function checkVersion(expected: string | undefined, target: string, current: object): void {
  if (expected === undefined) return;
  const version = recordVersion(current);
  if (version !== expected) throw new OpenEmrConflictError(target, expected, version);
}

async function guarded<T extends object>(
  expected: string | undefined,
  target: string,
  read: () => Promise<T | undefined>,
): Promise<void> {
  if (expected === undefined) return;
  const current = await read();
  if (current === undefined) throw new OpenEmrNotFoundError(target);
  checkVersion(expected, target, current);
}

/** `client.patients`: `/api/patient` (uuid routes). */
export class PatientsNamespace {
  constructor(private readonly ctx: Ctx) {}

  /**
   * One page of patients (`_limit`/`_offset`, max 200). 7.0 returns `limit+1` rows (openemr#8128): trimmed here.
   * @param search - search fields (only those OpenEMR honours are accepted)
   * @param page - `limit` (1–200) and `offset`
   */
  async page(
    search: PatientSearch = {},
    page: { limit: number; offset?: number | undefined } & ReadOptions = { limit: 100 },
  ): Promise<PatientPage> {
    const query = parseInput(patientSearchSchema, search, 'patient search');
    const limit = parseInput(z.number().int().min(1).max(200), page.limit, 'page limit');
    const offset = parseInput(z.number().int().min(0), page.offset ?? 0, 'page offset');
    const { data, links } = await this.ctx.api.envelope(
      { method: 'GET', path: 'api/patient', query: { ...query, _limit: limit, _offset: offset }, signal: page.signal },
      z.array(patientSchema),
      'patient search',
    );
    const rows = data === NOT_FOUND ? [] : data;
    const hasMore = rows.length > limit || links?.['next'] !== undefined;
    return { patients: rows.slice(0, limit), hasMore };
  }

  /**
   * Every patient matching `search`, fetched page by page (an async iterator).
   * @param search - search fields
   * @param options - `pageSize` (default 100, max 200)
   */
  async *search(
    search: PatientSearch = {},
    options: { pageSize?: number | undefined } & ReadOptions = {},
  ): AsyncGenerator<Patient, void, undefined> {
    const limit = options.pageSize ?? 100;
    for (let offset = 0; ; offset += limit) {
      const page = await this.page(search, { limit, offset, signal: options.signal });
      yield* page.patients;
      if (!page.hasMore || page.patients.length === 0) return;
    }
  }

  /**
   * All patients matching `search` as one array (paged underneath).
   * @param search - search fields
   */
  async list(search: PatientSearch = {}, options: ReadOptions = {}): Promise<Patient[]> {
    const out: Patient[] = [];
    for await (const p of this.search(search, { pageSize: 200, signal: options.signal })) out.push(p);
    return out;
  }

  /**
   * A patient by uuid; `undefined` when there is none (OpenEMR answers 400 `validationErrors.uuid`).
   * @param puuid - the patient's uuid
   */
  async get(puuid: string, options: ReadOptions = {}): Promise<Patient | undefined> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/patient/${uuid(puuid, 'puuid')}`, signal: options.signal },
      patientSchema,
      'patient read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Creates a patient.
   * @param input - `fname`, `lname` (≥ 2), `DOB` (date), `sex` (4–30: Male/Female/Unknown) and optional fields
   * @returns `{pid, uuid}`
   * @throws {@link ValidationError} naming the fields, before sending or from OpenEMR
   */
  async create(input: PatientCreateInput, options: ReadOptions = {}): Promise<PatientCreated> {
    const body = parseInput(patientCreateSchema, input, 'patient');
    const { data } = await this.ctx.api.envelope(
      { method: 'POST', path: 'api/patient', body, signal: options.signal },
      patientCreatedSchema,
      'patient create',
    );
    if (data === NOT_FOUND)
      throw new CdssError('OpenEMR returned no identifiers for the created patient', { code: 'UNEXPECTED_RESPONSE' });
    return data;
  }

  /**
   * Updates a patient (only the given fields).
   * @param puuid - the patient's uuid
   * @param input - fields to change
   * @returns the updated record
   * @throws {@link OpenEmrNotFoundError}, {@link OpenEmrConflictError}, {@link ValidationError}
   */
  async update(puuid: string, input: PatientUpdateInput, options: WriteOptions = {}): Promise<Patient> {
    const key = uuid(puuid, 'puuid');
    const body = parseInput(patientUpdateSchema, input, 'patient update');
    await guarded(options.expectedVersion, 'patient', () => this.get(key, options));
    const { data } = await this.ctx.api.envelope(
      { method: 'PUT', path: `api/patient/${key}`, body, signal: options.signal },
      patientSchema,
      'patient update',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
    return data;
  }
}

/** `client.encounters`: `/api/patient/{puuid}/encounter`. */
export class EncountersNamespace {
  constructor(private readonly ctx: Ctx) {}

  /**
   * A patient's encounters, newest first; `[]` when none (7.0 answers 404).
   * @param puuid - the patient's uuid
   */
  async list(puuid: string, options: ReadOptions = {}): Promise<Encounter[]> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/patient/${uuid(puuid, 'puuid')}/encounter`, signal: options.signal },
      z.array(encounterSchema),
      'encounter list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * One encounter; `undefined` when none.
   * @param puuid - the patient's uuid
   * @param euuid - the encounter's uuid
   */
  async get(puuid: string, euuid: string, options: ReadOptions = {}): Promise<Encounter | undefined> {
    const { data } = await this.ctx.api.envelope(
      {
        method: 'GET',
        path: `api/patient/${uuid(puuid, 'puuid')}/encounter/${uuid(euuid, 'euuid')}`,
        signal: options.signal,
      },
      encounterSchema,
      'encounter read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Creates an encounter. On 8.x success and failure may both come with 200: decided from the body.
   * @param puuid - the patient's uuid
   * @param input - `pc_catid` and `class_code` required
   * @returns the created encounter, with `eid` and `euuid`
   */
  async create(puuid: string, input: EncounterCreateInput, options: ReadOptions = {}): Promise<Encounter> {
    const key = uuid(puuid, 'puuid');
    const body = parseInput(encounterCreateSchema, input, 'encounter');
    const { data } = await this.ctx.api.envelope(
      { method: 'POST', path: `api/patient/${key}/encounter`, body, signal: options.signal },
      encounterSchema,
      'encounter create',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
    return data;
  }

  /**
   * Updates an encounter (only the given fields).
   * @param puuid - the patient's uuid
   * @param euuid - the encounter's uuid
   * @param input - fields to change
   */
  async update(
    puuid: string,
    euuid: string,
    input: EncounterUpdateInput,
    options: WriteOptions = {},
  ): Promise<Encounter> {
    const p = uuid(puuid, 'puuid');
    const e = uuid(euuid, 'euuid');
    const body = parseInput(encounterUpdateSchema, input, 'encounter update');
    await guarded(options.expectedVersion, 'encounter', () => this.get(p, e, options));
    const { data } = await this.ctx.api.envelope(
      { method: 'PUT', path: `api/patient/${p}/encounter/${e}`, body, signal: options.signal },
      encounterSchema,
      'encounter update',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('encounter');
    return data;
  }
}

/** Identifies an encounter on the legacy numeric routes. */
export interface EncounterKey {
  /** The patient's numeric pid (from the patient record). */
  pid: number | string;
  /** The encounter's numeric eid (from the encounter record). */
  eid: number | string;
}

/** `client.vitals`: `/api/patient/{pid}/encounter/{eid}/vital` (legacy, numeric ids, raw bodies). */
export class VitalsNamespace {
  constructor(private readonly ctx: Ctx) {}

  private base(key: EncounterKey): string {
    return `api/patient/${id(key.pid, 'pid')}/encounter/${id(key.eid, 'eid')}/vital`;
  }

  /**
   * An encounter's vitals; `[]` when none (OpenEMR answers 404).
   * @param key - numeric pid and eid
   */
  async list(key: EncounterKey, options: ReadOptions = {}): Promise<Vital[]> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: this.base(key), signal: options.signal },
      z.array(vitalSchema),
      'vitals list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * One vitals record; `undefined` when none.
   * @param key - numeric pid and eid
   * @param vid - the vitals id
   */
  async get(key: EncounterKey, vid: number | string, options: ReadOptions = {}): Promise<Vital | undefined> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: `${this.base(key)}/${id(vid, 'vid')}`, signal: options.signal },
      vitalSchema,
      'vitals read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Records vitals (US units: lb, in, °F).
   * @param key - numeric pid and eid
   * @param input - measurements
   * @returns `{vid, fid}`
   */
  async create(key: EncounterKey, input: VitalInput, options: ReadOptions = {}): Promise<VitalCreated> {
    const path = this.base(key);
    const body = parseInput(vitalInputSchema, input, 'vitals');
    const data = await this.ctx.api.raw(
      { method: 'POST', path, body, signal: options.signal },
      vitalCreatedSchema,
      'vitals create',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('encounter');
    return data;
  }

  /**
   * Updates vitals; returns the record as stored.
   * @param key - numeric pid and eid
   * @param vid - the vitals id
   * @param input - measurements to change
   */
  async update(key: EncounterKey, vid: number | string, input: VitalInput, options: WriteOptions = {}): Promise<Vital> {
    const path = `${this.base(key)}/${id(vid, 'vid')}`;
    const body = parseInput(vitalInputSchema, input, 'vitals update');
    await guarded(options.expectedVersion, 'vitals', () => this.get(key, vid, options));
    const data = await this.ctx.api.raw(
      { method: 'PUT', path, body, signal: options.signal },
      z.looseObject({ vid: z.union([z.string(), z.number()]) }),
      'vitals update',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('vitals');
    const stored = await this.get(key, vid, options);
    if (stored === undefined) throw new OpenEmrNotFoundError('vitals');
    return stored;
  }
}

/** `client.soapNotes`: `/api/patient/{pid}/encounter/{eid}/soap_note` (legacy). */
export class SoapNotesNamespace {
  constructor(private readonly ctx: Ctx) {}

  private base(key: EncounterKey): string {
    return `api/patient/${id(key.pid, 'pid')}/encounter/${id(key.eid, 'eid')}/soap_note`;
  }

  /** An encounter's SOAP notes; `[]` when none. @param key - numeric pid and eid */
  async list(key: EncounterKey, options: ReadOptions = {}): Promise<SoapNote[]> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: this.base(key), signal: options.signal },
      z.array(soapNoteSchema),
      'SOAP note list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * One SOAP note; `undefined` when none.
   * @param key - numeric pid and eid
   * @param sid - the note id
   */
  async get(key: EncounterKey, sid: number | string, options: ReadOptions = {}): Promise<SoapNote | undefined> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: `${this.base(key)}/${id(sid, 'sid')}`, signal: options.signal },
      soapNoteSchema,
      'SOAP note read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Creates a SOAP note.
   * @param key - numeric pid and eid
   * @param input - subjective, objective, assessment, plan (each 2–65535 characters)
   */
  async create(key: EncounterKey, input: SoapNoteInput, options: ReadOptions = {}): Promise<SoapNoteCreated> {
    const path = this.base(key);
    const body = parseInput(soapNoteInputSchema, input, 'SOAP note');
    const data = await this.ctx.api.raw(
      { method: 'POST', path, body, signal: options.signal },
      soapNoteCreatedSchema,
      'SOAP note create',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('encounter');
    return data;
  }

  /**
   * Updates a SOAP note. OpenEMR overwrites all four parts (omitted ones become empty), so the client
   * merges the current note with `input` first: omitted parts keep their value.
   * @param key - numeric pid and eid
   * @param sid - the note id
   * @param input - parts to change
   */
  async update(
    key: EncounterKey,
    sid: number | string,
    input: SoapNoteInput,
    options: WriteOptions = {},
  ): Promise<SoapNote> {
    const path = `${this.base(key)}/${id(sid, 'sid')}`;
    const patch = parseInput(soapNoteInputSchema, input, 'SOAP note update');
    const current = await this.get(key, sid, options);
    if (current === undefined) throw new OpenEmrNotFoundError('SOAP note');
    checkVersion(options.expectedVersion, 'SOAP note', current);
    const body: Record<string, string> = {};
    for (const k of ['subjective', 'objective', 'assessment', 'plan'] as const) {
      const value = patch[k] ?? current[k];
      if (value !== null && value !== undefined) body[k] = value;
    }
    const data = await this.ctx.api.raw(
      { method: 'PUT', path, body, signal: options.signal },
      z.looseObject({ sid: z.union([z.string(), z.number()]) }),
      'SOAP note update',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('SOAP note');
    const stored = await this.get(key, sid, options);
    if (stored === undefined) throw new OpenEmrNotFoundError('SOAP note');
    return stored;
  }
}

type IssueType = 'medical_problem' | 'allergy';

/** Shared by `client.medicalProblems` and `client.allergies` (envelope, uuid routes). */
abstract class IssuesNamespace<CreateIn, UpdateIn> {
  protected abstract readonly type: IssueType;
  protected abstract readonly param: string;
  protected abstract readonly createSchema: z.ZodType;
  protected abstract readonly updateSchema: z.ZodType;

  constructor(protected readonly ctx: Ctx) {}

  private get label(): string {
    return this.type === 'allergy' ? 'allergy' : 'medical problem';
  }

  /**
   * A patient's entries; `[]` when none. On 7.0 the per-patient route returns nothing
   * (openemr#6242, #10827), so the client reads the global list and keeps this patient's rows.
   * @param puuid - the patient's uuid
   */
  async list(puuid: string, options: ReadOptions = {}): Promise<MedicalProblem[]> {
    const key = uuid(puuid, 'puuid');
    if (this.ctx.version === '7.0') {
      const { data } = await this.ctx.api.envelope(
        { method: 'GET', path: `api/${this.type}`, signal: options.signal },
        z.array(listItemSchema),
        `${this.label} list`,
      );
      return data === NOT_FOUND ? [] : data.filter((row) => row.puuid === key);
    }
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/patient/${key}/${this.type}`, signal: options.signal },
      z.array(listItemSchema),
      `${this.label} list`,
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * One entry; `undefined` when none.
   * @param puuid - the patient's uuid
   * @param itemUuid - the entry's uuid
   */
  async get(puuid: string, itemUuid: string, options: ReadOptions = {}): Promise<MedicalProblem | undefined> {
    const p = uuid(puuid, 'puuid');
    const i = uuid(itemUuid, this.param);
    if (this.ctx.version === '7.0') {
      const { data } = await this.ctx.api.envelope(
        { method: 'GET', path: `api/${this.type}/${i}`, signal: options.signal },
        listItemSchema,
        `${this.label} read`,
      );
      return data === NOT_FOUND || data.puuid !== p ? undefined : data;
    }
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/patient/${p}/${this.type}/${i}`, signal: options.signal },
      listItemSchema,
      `${this.label} read`,
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Creates an entry. On 8.x success and failure may both come with 200: decided from the body.
   * @param puuid - the patient's uuid
   * @param input - the entry
   * @returns `{id, uuid}`
   */
  async create(puuid: string, input: CreateIn, options: ReadOptions = {}): Promise<IssueCreated> {
    const p = uuid(puuid, 'puuid');
    const body = parseInput(this.createSchema, input, this.label) as unknown;
    const { data } = await this.ctx.api.envelope(
      { method: 'POST', path: `api/patient/${p}/${this.type}`, body, signal: options.signal },
      issueCreatedSchema,
      `${this.label} create`,
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
    return data;
  }

  /**
   * Updates an entry (only the given fields).
   * @param puuid - the patient's uuid
   * @param itemUuid - the entry's uuid
   * @param input - fields to change
   */
  async update(puuid: string, itemUuid: string, input: UpdateIn, options: WriteOptions = {}): Promise<MedicalProblem> {
    const p = uuid(puuid, 'puuid');
    const i = uuid(itemUuid, this.param);
    const body = parseInput(this.updateSchema, input, `${this.label} update`) as unknown;
    await guarded(options.expectedVersion, this.label, () => this.get(p, i, options));
    const { data } = await this.ctx.api.envelope(
      { method: 'PUT', path: `api/patient/${p}/${this.type}/${i}`, body, signal: options.signal },
      listItemSchema,
      `${this.label} update`,
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError(this.label);
    return data;
  }

  /**
   * Deletes an entry.
   * @param puuid - the patient's uuid
   * @param itemUuid - the entry's uuid
   * @throws {@link OpenEmrNotFoundError} when there is no such entry
   */
  async delete(puuid: string, itemUuid: string, options: ReadOptions = {}): Promise<void> {
    const p = uuid(puuid, 'puuid');
    const i = uuid(itemUuid, this.param);
    const { data } = await this.ctx.api.envelope(
      { method: 'DELETE', path: `api/patient/${p}/${this.type}/${i}`, signal: options.signal },
      z.unknown(),
      `${this.label} delete`,
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError(this.label);
  }
}

/** `client.medicalProblems`: `/api/patient/{puuid}/medical_problem`. */
export class MedicalProblemsNamespace extends IssuesNamespace<MedicalProblemCreateInput, MedicalProblemUpdateInput> {
  protected readonly type = 'medical_problem' as const;
  protected readonly param = 'muuid';
  protected readonly createSchema = medicalProblemCreateSchema;
  protected readonly updateSchema = medicalProblemUpdateSchema;
}

/** `client.allergies`: `/api/patient/{puuid}/allergy`. */
export class AllergiesNamespace extends IssuesNamespace<AllergyCreateInput, AllergyUpdateInput> {
  protected readonly type = 'allergy' as const;
  protected readonly param = 'auuid';
  protected readonly createSchema = allergyCreateSchema;
  protected readonly updateSchema = allergyUpdateSchema;

  /** A patient's allergies; `[]` when none. @param puuid - the patient's uuid */
  override list(puuid: string, options: ReadOptions = {}): Promise<Allergy[]> {
    return super.list(puuid, options);
  }
}

/** `client.medications`: `/api/patient/{pid}/medication` (legacy, numeric ids). */
export class MedicationsNamespace {
  constructor(private readonly ctx: Ctx) {}

  private base(pid: number | string): string {
    return `api/patient/${id(pid, 'pid')}/medication`;
  }

  /** A patient's medication list; `[]` when none (OpenEMR answers 404). @param pid - numeric pid */
  async list(pid: number | string, options: ReadOptions = {}): Promise<Medication[]> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: this.base(pid), signal: options.signal },
      z.array(listItemSchema),
      'medication list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * One medication; `undefined` when none.
   * @param pid - numeric pid
   * @param mid - numeric medication id
   */
  async get(pid: number | string, mid: number | string, options: ReadOptions = {}): Promise<Medication | undefined> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: `${this.base(pid)}/${id(mid, 'mid')}`, signal: options.signal },
      listItemSchema,
      'medication read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Adds a medication. Dates may be given as `YYYY-MM-DD`: this route needs `Y-m-d H:i:s`, added here.
   * @param pid - numeric pid
   * @param input - `title` and `begdate` required
   * @returns the new medication id
   */
  async create(pid: number | string, input: MedicationCreateInput, options: ReadOptions = {}): Promise<{ id: number }> {
    const path = this.base(pid);
    const body = parseInput(medicationCreateSchema, input, 'medication');
    const data = await this.ctx.api.raw(
      { method: 'POST', path, body, signal: options.signal },
      medicationWrittenSchema,
      'medication create',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
    return { id: data.id };
  }

  /**
   * Updates a medication.
   * @param pid - numeric pid
   * @param mid - numeric medication id
   * @param input - fields to change
   */
  async update(
    pid: number | string,
    mid: number | string,
    input: MedicationUpdateInput,
    options: WriteOptions = {},
  ): Promise<Medication> {
    const path = `${this.base(pid)}/${id(mid, 'mid')}`;
    const body = parseInput(medicationUpdateSchema, input, 'medication update');
    await guarded(options.expectedVersion, 'medication', () => this.get(pid, mid, options));
    const data = await this.ctx.api.raw(
      { method: 'PUT', path, body, signal: options.signal },
      medicationWrittenSchema,
      'medication update',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('medication');
    const stored = await this.get(pid, mid, options);
    if (stored === undefined) throw new OpenEmrNotFoundError('medication');
    return stored;
  }

  /**
   * Removes a medication.
   * @param pid - numeric pid
   * @param mid - numeric medication id
   */
  async delete(pid: number | string, mid: number | string, options: ReadOptions = {}): Promise<void> {
    const data = await this.ctx.api.raw(
      { method: 'DELETE', path: `${this.base(pid)}/${id(mid, 'mid')}`, signal: options.signal },
      z.literal(true),
      'medication delete',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('medication');
  }
}

/** `client.prescriptions`: `/api/prescription`. */
export class PrescriptionsNamespace {
  constructor(private readonly ctx: Ctx) {}

  /** A patient's active prescriptions (`?patient.uuid=`). @param puuid - the patient's uuid */
  async list(puuid: string, options: ReadOptions = {}): Promise<Prescription[]> {
    const { data } = await this.ctx.api.envelope(
      {
        method: 'GET',
        path: 'api/prescription',
        query: { 'patient.uuid': uuid(puuid, 'puuid') },
        signal: options.signal,
      },
      z.array(prescriptionSchema),
      'prescription list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /** One prescription; `undefined` when none. @param rxUuid - its uuid */
  async get(rxUuid: string, options: ReadOptions = {}): Promise<Prescription | undefined> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/prescription/${uuid(rxUuid, 'uuid')}`, signal: options.signal },
      prescriptionSchema,
      'prescription read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  private require8(what: string): void {
    if (this.ctx.version !== '8')
      throw new CdssError(`${what} needs OpenEMR 8.x (the route does not exist in 7.0)`, { code: 'UNSUPPORTED' });
  }

  /**
   * Creates a prescription (8.x only).
   * @param input - `patient_id` (numeric pid) and `drug` required
   * @returns `{id, uuid}`
   * @throws {@link CdssError} `UNSUPPORTED` on 7.0
   */
  async create(input: PrescriptionCreateInput, options: ReadOptions = {}): Promise<IssueCreated> {
    this.require8('Creating prescriptions');
    const body = parseInput(prescriptionCreateSchema, input, 'prescription');
    const { data } = await this.ctx.api.envelope(
      { method: 'POST', path: 'api/prescription', body, signal: options.signal },
      issueCreatedSchema,
      'prescription create',
    );
    if (data === NOT_FOUND)
      throw new CdssError('OpenEMR returned no identifiers for the prescription', { code: 'UNEXPECTED_RESPONSE' });
    return data;
  }

  /**
   * Deactivates a prescription (8.x only; OpenEMR soft-deletes).
   * @param rxUuid - its uuid
   */
  async delete(rxUuid: string, options: ReadOptions = {}): Promise<void> {
    this.require8('Deleting prescriptions');
    const { data } = await this.ctx.api.envelope(
      { method: 'DELETE', path: `api/prescription/${uuid(rxUuid, 'uuid')}`, signal: options.signal },
      z.unknown(),
      'prescription delete',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('prescription');
  }
}

/** `client.procedures`: `/api/procedure` (read only). */
export class ProceduresNamespace {
  constructor(private readonly ctx: Ctx) {}

  /**
   * A patient's procedure orders. OpenEMR's route ignores filters and returns every patient's rows
   * (notes §3.4), so the client filters by `puuid`.
   * @param puuid - the patient's uuid
   */
  async list(puuid: string, options: ReadOptions = {}): Promise<Procedure[]> {
    const key = uuid(puuid, 'puuid');
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: 'api/procedure', signal: options.signal },
      z.array(procedureSchema),
      'procedure list',
    );
    return data === NOT_FOUND ? [] : data.filter((p) => p.puuid === key);
  }

  /** One procedure order; `undefined` when none. @param procUuid - its uuid */
  async get(procUuid: string, options: ReadOptions = {}): Promise<Procedure | undefined> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/procedure/${uuid(procUuid, 'uuid')}`, signal: options.signal },
      procedureSchema,
      'procedure read',
    );
    return data === NOT_FOUND ? undefined : data;
  }
}

/** `client.appointments`: `/api/patient/{pid}/appointment` (legacy, numeric ids). */
export class AppointmentsNamespace {
  constructor(private readonly ctx: Ctx) {}

  /** A patient's appointments; `[]` when none. @param pid - numeric pid */
  async list(pid: number | string, options: ReadOptions = {}): Promise<Appointment[]> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: `api/patient/${id(pid, 'pid')}/appointment`, signal: options.signal },
      z.array(appointmentSchema),
      'appointment list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /** Every appointment (all patients). */
  async listAll(options: ReadOptions = {}): Promise<Appointment[]> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: 'api/appointment', signal: options.signal },
      z.array(appointmentSchema),
      'appointment list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * One appointment (OpenEMR answers an array of one row); `undefined` when none.
   * @param pid - numeric pid
   * @param eid - numeric appointment id (`pc_eid`)
   */
  async get(pid: number | string, eid: number | string, options: ReadOptions = {}): Promise<Appointment | undefined> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: `api/patient/${id(pid, 'pid')}/appointment/${id(eid, 'eid')}`, signal: options.signal },
      z.union([z.array(appointmentSchema), appointmentSchema]),
      'appointment read',
    );
    if (data === NOT_FOUND) return undefined;
    return Array.isArray(data) ? data[0] : data;
  }

  /**
   * Books an appointment. `pc_startTime` is sent as `HH:MM` (OpenEMR requires exactly five characters).
   * @param pid - numeric pid
   * @param input - all fields but `pc_aid` required
   * @returns the new `pc_eid`
   */
  async create(
    pid: number | string,
    input: AppointmentCreateInput,
    options: ReadOptions = {},
  ): Promise<{ id: number }> {
    const path = `api/patient/${id(pid, 'pid')}/appointment`;
    const body = parseInput(appointmentCreateSchema, input, 'appointment');
    const data = await this.ctx.api.raw(
      { method: 'POST', path, body, signal: options.signal },
      medicationWrittenSchema,
      'appointment create',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
    return { id: data.id };
  }

  /**
   * Cancels (deletes) an appointment.
   * @param pid - numeric pid
   * @param eid - numeric appointment id
   */
  async delete(pid: number | string, eid: number | string, options: ReadOptions = {}): Promise<void> {
    const data = await this.ctx.api.raw(
      { method: 'DELETE', path: `api/patient/${id(pid, 'pid')}/appointment/${id(eid, 'eid')}`, signal: options.signal },
      z.unknown(),
      'appointment delete',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('appointment');
  }
}

/** `client.practitioners`: `/api/practitioner`. */
export class PractitionersNamespace {
  constructor(private readonly ctx: Ctx) {}

  /** Practitioners, optionally filtered by exact field values. @param search - e.g. `{ npi }` */
  async list(
    search: Partial<Record<'fname' | 'lname' | 'npi' | 'email' | 'specialty' | 'username', string>> = {},
    options: ReadOptions = {},
  ): Promise<Practitioner[]> {
    const query = parseInput(
      z
        .object({
          fname: z.string(),
          lname: z.string(),
          npi: z.string(),
          email: z.string(),
          specialty: z.string(),
          username: z.string(),
        })
        .partial()
        .strict(),
      search,
      'practitioner search',
    );
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: 'api/practitioner', query, signal: options.signal },
      z.array(practitionerSchema),
      'practitioner list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /** One practitioner; `undefined` when none. @param pruuid - its uuid */
  async get(pruuid: string, options: ReadOptions = {}): Promise<Practitioner | undefined> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/practitioner/${uuid(pruuid, 'pruuid')}`, signal: options.signal },
      practitionerSchema,
      'practitioner read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Creates a practitioner (needs the `admin/users` ACL).
   * @param input - `fname`, `lname` (≥ 2) and `npi` (10–15 digits) required
   * @returns `{id, uuid}`
   */
  async create(input: PractitionerCreateInput, options: ReadOptions = {}): Promise<IssueCreated> {
    const body = parseInput(practitionerCreateSchema, input, 'practitioner');
    const { data } = await this.ctx.api.envelope(
      { method: 'POST', path: 'api/practitioner', body, signal: options.signal },
      issueCreatedSchema,
      'practitioner create',
    );
    if (data === NOT_FOUND)
      throw new CdssError('OpenEMR returned no identifiers for the practitioner', { code: 'UNEXPECTED_RESPONSE' });
    return data;
  }

  /**
   * Updates a practitioner.
   * @param pruuid - its uuid
   * @param input - fields to change
   */
  async update(pruuid: string, input: PractitionerUpdateInput, options: WriteOptions = {}): Promise<Practitioner> {
    const key = uuid(pruuid, 'pruuid');
    const body = parseInput(practitionerUpdateSchema, input, 'practitioner update');
    await guarded(options.expectedVersion, 'practitioner', () => this.get(key, options));
    const { data } = await this.ctx.api.envelope(
      { method: 'PUT', path: `api/practitioner/${key}`, body, signal: options.signal },
      practitionerSchema,
      'practitioner update',
    );
    if (data === NOT_FOUND) throw new OpenEmrNotFoundError('practitioner');
    return data;
  }
}

/** The OpenEMR client. Create it with {@link createOpenEmrClient}. */
export interface OpenEmrClient {
  /** The version profile in use. */
  readonly version: OpenEmrVersion;
  /** The transport for `/apis/{site}` (shared by all namespaces). */
  readonly transport: HttpTransport;
  /** The OAuth2 server of this OpenEMR (registration, discovery, grants). */
  readonly oauth: OpenEmrOAuth;
  readonly patients: PatientsNamespace;
  readonly encounters: EncountersNamespace;
  readonly vitals: VitalsNamespace;
  readonly soapNotes: SoapNotesNamespace;
  readonly medicalProblems: MedicalProblemsNamespace;
  readonly allergies: AllergiesNamespace;
  readonly medications: MedicationsNamespace;
  readonly prescriptions: PrescriptionsNamespace;
  readonly procedures: ProceduresNamespace;
  readonly appointments: AppointmentsNamespace;
  readonly practitioners: PractitionersNamespace;
  readonly fhir: FhirNamespace;
}

function isStrategy(auth: OpenEmrAuthConfig | AuthStrategy): auth is AuthStrategy {
  return typeof (auth as AuthStrategy).authorize === 'function';
}

/**
 * Creates an OpenEMR client.
 * @param options - see {@link OpenEmrClientOptions}; only `baseUrl` is required
 * @returns the client
 * @throws {@link ValidationError} when an option is invalid (naming it)
 * @example
 * ```ts
 * const emr = createOpenEmrClient({
 *   baseUrl: 'https://emr.example', version: '8',
 *   auth: { kind: 'password', clientId, clientSecret, username, password, scope: CDSS_SCOPES },
 * });
 * const uuids: string[] = [];
 * for await (const p of emr.patients.search({ lname: 'Rossi' })) uuids.push(p.uuid);
 * ```
 */
export function createOpenEmrClient(options: OpenEmrClientOptions): OpenEmrClient {
  const parsed = optionsSchema.safeParse({
    baseUrl: options.baseUrl,
    site: options.site,
    version: options.version,
    timeoutMs: options.timeoutMs,
  });
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid OpenEMR client options');
  const root = options.baseUrl.replace(/\/+$/, '');
  const site = options.site ?? 'default';
  const version = options.version ?? '8';
  const clock = options.clock ?? systemClock;
  const auth = options.auth;
  const oauth = new OpenEmrOAuth({
    baseUrl: root,
    site,
    clientId: auth !== undefined && !isStrategy(auth) && auth.kind !== 'bearer' ? auth.clientId : undefined,
    clientSecret:
      auth !== undefined && !isStrategy(auth) && (auth.kind === 'password' || auth.kind === 'refreshToken')
        ? auth.clientSecret
        : undefined,
    clock,
    logger: options.logger,
  });
  let strategy: AuthStrategy | undefined;
  if (auth === undefined) strategy = undefined;
  else if (isStrategy(auth)) strategy = auth;
  else if (auth.kind === 'bearer') strategy = bearerAuth(auth.token);
  else if (auth.kind === 'password') strategy = oauth2Auth(createPasswordTokenProvider({ ...auth, oauth }), { clock });
  else if (auth.kind === 'refreshToken')
    strategy = oauth2Auth(createRefreshTokenProvider({ ...auth, oauth }), { clock });
  else strategy = oauth2Auth(createClientCredentialsTokenProvider({ ...auth, oauth }), { clock });

  const transport =
    options.transport ??
    new HttpTransport({
      baseUrl: `${root}/apis/${encodeURIComponent(site)}`,
      auth: strategy,
      retry: options.retry,
      timeoutMs: options.timeoutMs,
      headers: options.headers,
      logger: options.logger,
      clock,
      axios: options.axios,
    });
  // A 400 "revoked or logged out" (notes §2.7) is healed by the same renewal as a 401, when the auth can renew.
  const renew = options.transport === undefined ? strategy?.onUnauthorized?.bind(strategy) : undefined;
  const reauth = renew === undefined ? undefined : () => renew();
  const ctx: Ctx = { api: new StandardApiCaller(transport, reauth), version };
  return {
    version,
    transport,
    oauth,
    patients: new PatientsNamespace(ctx),
    encounters: new EncountersNamespace(ctx),
    vitals: new VitalsNamespace(ctx),
    soapNotes: new SoapNotesNamespace(ctx),
    medicalProblems: new MedicalProblemsNamespace(ctx),
    allergies: new AllergiesNamespace(ctx),
    medications: new MedicationsNamespace(ctx),
    prescriptions: new PrescriptionsNamespace(ctx),
    procedures: new ProceduresNamespace(ctx),
    appointments: new AppointmentsNamespace(ctx),
    practitioners: new PractitionersNamespace(ctx),
    fhir: new FhirNamespace(transport, reauth),
  };
}
