/**
 * The OpenEMR client: resource namespaces over one `@cdss/core` HttpTransport, with OpenEMR's quirks
 * hidden (shared/notes/openemr.md and the recordings in shared/reference/openemr/recorded-*): numeric
 * pid/eid vs uuid routes, envelopes vs raw bodies, validation errors as {@link ValidationError}, empty lists
 * as `[]`, success decided from the body, date formats, the differences between releases (version
 * profiles), and writes that fail after storing (confirmed by reading back, never sent twice).
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
import { DocumentsNamespace } from './documents.js';
import {
  confirmedWrite,
  holds,
  id,
  parseInput,
  uuid,
  type Ctx,
  type ReadOptions,
  type WriteOptions,
} from './shared.js';
import { FhirNamespace } from './fhir.js';
import { NOT_FOUND, OpenEmrConflictError, OpenEmrNotFoundError, StandardApiCaller, type Relogin } from './http.js';
import {
  OpenEmrOAuth,
  createClientCredentialsTokenProvider,
  createPasswordTokenProvider,
  createRefreshTokenProvider,
  type ClientCredentialsInput,
} from './oauth.js';
import {
  OpenEmrUnsupportedError,
  detectOpenEmrVersion,
  profileFor,
  type OpenEmrOperation,
  type OpenEmrProfile,
  type OpenEmrVersion,
} from './profiles.js';
import {
  allergyCreateSchema,
  allergyUpdateSchema,
  appointmentCreateSchema,
  appointmentSchema,
  encounterCreateSchema,
  encounterIdsSchema,
  encounterSchema,
  encounterUpdateSchema,
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

export type { OpenEmrVersion, ReadOptions, WriteOptions };

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
  /**
   * The release profile: `7.0`, `8.0`, `8.2`, or `auto` (default) to detect it from the server on first use
   * (`/api/version`, else the FHIR CapabilityStatement). `8` is read as `8.0`.
   */
  version?: OpenEmrVersion | '8' | 'auto' | undefined;
  /** Authentication: a config, or any `AuthStrategy`. Default none (only public endpoints work). */
  auth?: OpenEmrAuthConfig | AuthStrategy | undefined;
  /**
   * The OpenEMR user and group that encounter updates are made as (8.x requires both in every encounter PUT).
   * Default: the password grant's `username`, group `Default`.
   */
  user?: { username: string; group?: string | undefined } | undefined;
  /** The document category uploads go to when the call names none. Default `Lab_Report`. */
  documentCategory?: string | undefined;
  /** Transport for `/apis/{site}`; when given, `auth`, `retry`, `timeoutMs`, `headers`, `axios` are its business. */
  transport?: HttpTransport | undefined;
  /** Retry policy (reads only: writes are never re-sent). Default core's (2 retries with backoff). */
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
  version: z.enum(['7.0', '8.0', '8.2', '8', 'auto']).optional(),
  timeoutMs: z.number().positive().optional(),
  user: z.object({ username: z.string().min(1), group: z.string().min(1).optional() }).optional(),
  documentCategory: z
    .string()
    .regex(/^[A-Za-z0-9_ ]{1,100}$/)
    .optional(),
});

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

/** A page of patients. */
export interface PatientPage {
  patients: Patient[];
  /** Whether another page follows. */
  hasMore: boolean;
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

/** Refuses an operation the profile cannot do, before anything is sent. */
async function requireSupported(ctx: Ctx, operation: OpenEmrOperation, signal?: AbortSignal): Promise<OpenEmrProfile> {
  const profile = await ctx.profile(signal);
  if (profile.notes[operation]?.kind === 'unsupported') throw new OpenEmrUnsupportedError(operation, profile.version);
  return profile;
}

/** `client.patients`: `/api/patient` (uuid routes). */
export class PatientsNamespace {
  constructor(private readonly ctx: Ctx) {}

  /**
   * One page of patients (`_limit`/`_offset`, max 200). 7.0.1 ignores both and answers every patient
   * (recorded-7.0.1 file 13), and other 7.0 releases answer `limit+1` rows (openemr#8128): on 7.0 the client
   * asks for everything and pages the answer itself.
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
    const profile = await this.ctx.profile(page.signal);
    if (!profile.serverPaging) {
      const rows = await this.fetch(query, page.signal);
      return { patients: rows.slice(offset, offset + limit), hasMore: rows.length > offset + limit };
    }
    const { data, links } = await this.ctx.api.envelope(
      { method: 'GET', path: 'api/patient', query: { ...query, _limit: limit, _offset: offset }, signal: page.signal },
      z.array(patientSchema),
      'patient search',
    );
    const rows = data === NOT_FOUND ? [] : data;
    const hasMore = rows.length > limit || links?.['next'] !== undefined;
    return { patients: rows.slice(0, limit), hasMore };
  }

  /** Every matching patient in one unpaged request (7.0). */
  private async fetch(query: Record<string, string | undefined>, signal: AbortSignal | undefined): Promise<Patient[]> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: 'api/patient', query, signal },
      z.array(patientSchema),
      'patient search',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * Every patient matching `search`, fetched page by page (an async iterator; on 7.0 in one request).
   * @param search - search fields
   * @param options - `pageSize` (default 100, max 200)
   */
  async *search(
    search: PatientSearch = {},
    options: { pageSize?: number | undefined } & ReadOptions = {},
  ): AsyncGenerator<Patient, void, undefined> {
    const profile = await this.ctx.profile(options.signal);
    if (!profile.serverPaging) {
      yield* await this.fetch(parseInput(patientSearchSchema, search, 'patient search'), options.signal);
      return;
    }
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
   * @throws the `TimeoutError` or `HttpError` 5xx, or {@link OpenEmrUnknownOutcomeError}, when OpenEMR failed in
   *   a way that may have stored it (not re-sent; {@link isUnknownOutcome} tells)
   */
  async create(input: PatientCreateInput, options: ReadOptions = {}): Promise<PatientCreated> {
    const body = parseInput(patientCreateSchema, input, 'patient');
    return confirmedWrite(
      'patient create',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'POST', path: 'api/patient', body, signal: options.signal },
          patientCreatedSchema,
          'patient create',
        );
        if (data === NOT_FOUND)
          throw new CdssError('OpenEMR returned no identifiers for the created patient', {
            code: 'UNEXPECTED_RESPONSE',
          });
        return data;
      },
      undefined,
    );
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
    return confirmedWrite(
      'patient update',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'PUT', path: `api/patient/${key}`, body, signal: options.signal },
          patientSchema,
          'patient update',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
        return data;
      },
      async () => {
        const stored = await this.get(key, options);
        return stored && holds(stored, body) ? stored : undefined;
      },
    );
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
   * Creates an encounter. 8.x answers the record (with 200); 7.0 answers only `{encounter, uuid}`, so the
   * client reads the record.
   * @param puuid - the patient's uuid
   * @param input - `pc_catid` and `class_code` required
   * @returns the created encounter, with `eid` and `euuid`
   */
  async create(puuid: string, input: EncounterCreateInput, options: ReadOptions = {}): Promise<Encounter> {
    const key = uuid(puuid, 'puuid');
    const body = parseInput(encounterCreateSchema, input, 'encounter');
    const created = await confirmedWrite(
      'encounter create',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'POST', path: `api/patient/${key}/encounter`, body, signal: options.signal },
          z.union([encounterSchema, encounterIdsSchema]),
          'encounter create',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
        return data;
      },
      undefined,
    );
    if ('euuid' in created) return created as Encounter;
    const read = await this.get(key, created.uuid, options);
    if (read === undefined) throw new OpenEmrNotFoundError('encounter');
    return read;
  }

  /**
   * Updates an encounter (only the given fields). 8.x requires `user` and `group` in every update (recorded
   * on 8.0.0): the client sends the configured API user. 7.0.1 cannot update encounters at all.
   * @param puuid - the patient's uuid
   * @param euuid - the encounter's uuid
   * @param input - fields to change
   * @throws {@link OpenEmrUnsupportedError} on 7.0
   */
  async update(
    puuid: string,
    euuid: string,
    input: EncounterUpdateInput,
    options: WriteOptions = {},
  ): Promise<Encounter> {
    const p = uuid(puuid, 'puuid');
    const e = uuid(euuid, 'euuid');
    const patch = parseInput(encounterUpdateSchema, input, 'encounter update');
    const profile = await requireSupported(this.ctx, 'encounters.update', options.signal);
    const body: Record<string, unknown> = { ...patch };
    if (profile.encounterUpdate === 'with-user-group') {
      if (this.ctx.user.username === undefined) {
        throw new ValidationError('Encounter updates need the OpenEMR user they are made as', [
          { path: 'user', message: 'set the client option `user` (OpenEMR 8 requires it)', code: 'invalid_type' },
        ]);
      }
      body['user'] = this.ctx.user.username;
      body['group'] = this.ctx.user.group;
    }
    await guarded(options.expectedVersion, 'encounter', () => this.get(p, e, options));
    return confirmedWrite(
      'encounter update',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'PUT', path: `api/patient/${p}/encounter/${e}`, body, signal: options.signal },
          encounterSchema,
          'encounter update',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('encounter');
        return data;
      },
      async () => {
        const stored = await this.get(p, e, options);
        return stored && holds(stored, patch) ? stored : undefined;
      },
    );
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
   * Records vitals (US units: lb, in, °F). 8.0.0 answers 500 although it stored them (recorded): the client
   * lists the encounter's vitals before and after, and answers with the new row (`fid` is then unknown).
   * @param key - numeric pid and eid
   * @param input - measurements
   * @returns `{vid, fid}`
   */
  async create(key: EncounterKey, input: VitalInput, options: ReadOptions = {}): Promise<VitalCreated> {
    const path = this.base(key);
    const body = parseInput(vitalInputSchema, input, 'vitals');
    const profile = await this.ctx.profile(options.signal);
    const before =
      profile.notes['vitals.create'] === undefined
        ? undefined
        : new Set((await this.list(key, options)).map((v) => v.id));
    return confirmedWrite(
      'vitals create',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'POST', path, body, signal: options.signal },
          vitalCreatedSchema,
          'vitals create',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('encounter');
        return data;
      },
      before === undefined
        ? undefined
        : async () => {
            const added = (await this.list(key, options)).filter((v) => !before.has(v.id) && holds(v, body));
            if (added.length > 1) throw new Error('more than one new row matches');
            return added[0] ? { vid: added[0].id } : undefined;
          },
    );
  }

  /**
   * Updates vitals; returns the record as stored. A 500 after storing (8.0.0) is confirmed by reading back.
   * @param key - numeric pid and eid
   * @param vid - the vitals id
   * @param input - measurements to change
   */
  async update(key: EncounterKey, vid: number | string, input: VitalInput, options: WriteOptions = {}): Promise<Vital> {
    const path = `${this.base(key)}/${id(vid, 'vid')}`;
    const body = parseInput(vitalInputSchema, input, 'vitals update');
    await guarded(options.expectedVersion, 'vitals', () => this.get(key, vid, options));
    await confirmedWrite(
      'vitals update',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'PUT', path, body, signal: options.signal },
          z.looseObject({ vid: z.union([z.string(), z.number()]) }),
          'vitals update',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('vitals');
        return data;
      },
      async () => {
        const stored = await this.get(key, vid, options);
        return stored && holds(stored, body) ? { vid: stored.id } : undefined;
      },
    );
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

  /**
   * An encounter's SOAP notes; `[]` when none. OpenEMR lists a note twice when its form id collides with
   * another form's (recorded on 7.0.1 and 8.0.0): the client keeps each note once.
   * @param key - numeric pid and eid
   */
  async list(key: EncounterKey, options: ReadOptions = {}): Promise<SoapNote[]> {
    const data = await this.ctx.api.raw(
      { method: 'GET', path: this.base(key), signal: options.signal },
      z.array(soapNoteSchema),
      'SOAP note list',
    );
    if (data === NOT_FOUND) return [];
    const seen = new Set<number>();
    return data.filter((note) => {
      if (seen.has(note.id)) return false;
      seen.add(note.id);
      return true;
    });
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
    return confirmedWrite(
      'SOAP note create',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'POST', path, body, signal: options.signal },
          soapNoteCreatedSchema,
          'SOAP note create',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('encounter');
        return data;
      },
      undefined,
    );
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
    await confirmedWrite(
      'SOAP note update',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'PUT', path, body, signal: options.signal },
          z.looseObject({ sid: z.union([z.string(), z.number()]) }),
          'SOAP note update',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('SOAP note');
        return data;
      },
      async () => {
        const stored = await this.get(key, sid, options);
        return stored && holds(stored, body) ? { sid: stored.id } : undefined;
      },
    );
    const stored = await this.get(key, sid, options);
    if (stored === undefined) throw new OpenEmrNotFoundError('SOAP note');
    return stored;
  }
}

type IssueType = 'medical_problem' | 'allergy';

/** Allergy fields 7.0.1 and 8.0.0 do not store (recorded): refused there instead of silently dropped. */
const ALLERGY_DETAILS = ['reaction', 'severity_al', 'verification'] as const;

/** Shared by `client.medicalProblems` and `client.allergies` (envelope, uuid routes). */
abstract class IssuesNamespace<CreateIn, UpdateIn> {
  protected abstract readonly type: IssueType;
  protected abstract readonly param: string;
  protected abstract readonly createSchema: z.ZodType;
  protected abstract readonly updateSchema: z.ZodType;
  protected abstract readonly op: 'medicalProblems' | 'allergies';

  constructor(protected readonly ctx: Ctx) {}

  private get label(): string {
    return this.type === 'allergy' ? 'allergy' : 'medical problem';
  }

  /**
   * A patient's entries; `[]` when none. Where the per-patient route answers nothing for rows that exist
   * (allergies on 7.0.1; problems and allergies on 8.0.0), the client reads the global list and keeps this
   * patient's rows.
   * @param puuid - the patient's uuid
   */
  async list(puuid: string, options: ReadOptions = {}): Promise<MedicalProblem[]> {
    const key = uuid(puuid, 'puuid');
    const profile = await this.ctx.profile(options.signal);
    if (profile.issueReads[this.type] === 'global') {
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
   * One entry; `undefined` when none. 7.0.1 and 8.0.0 answer `data: []` for existing entries (recorded): the
   * client finds it in the patient's list there.
   * @param puuid - the patient's uuid
   * @param itemUuid - the entry's uuid
   */
  async get(puuid: string, itemUuid: string, options: ReadOptions = {}): Promise<MedicalProblem | undefined> {
    const p = uuid(puuid, 'puuid');
    const i = uuid(itemUuid, this.param);
    const profile = await this.ctx.profile(options.signal);
    if (profile.notes[`${this.op}.get`] !== undefined) {
      return (await this.list(p, options)).find((row) => row.uuid === i);
    }
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/patient/${p}/${this.type}/${i}`, signal: options.signal },
      listItemSchema,
      `${this.label} read`,
    );
    return data === NOT_FOUND ? undefined : data;
  }

  private async checkDetails(body: object, signal: AbortSignal | undefined): Promise<void> {
    if (this.type !== 'allergy') return;
    const profile = await this.ctx.profile(signal);
    if (profile.allergyDetails) return;
    const given = ALLERGY_DETAILS.filter((k) => (body as Record<string, unknown>)[k] !== undefined);
    if (given.length > 0) {
      throw new ValidationError(
        `OpenEMR ${profile.version} does not store ${given.join(', ')}`,
        given.map((k) => ({ path: k, message: `not stored by OpenEMR ${profile.version}`, code: 'unsupported' })),
      );
    }
  }

  /**
   * Creates an entry. On 8.x success and failure may both come with 200: decided from the body.
   * @param puuid - the patient's uuid
   * @param input - the entry
   * @returns `{id, uuid}`
   */
  async create(puuid: string, input: CreateIn, options: ReadOptions = {}): Promise<IssueCreated> {
    const p = uuid(puuid, 'puuid');
    const body = parseInput(this.createSchema, input, this.label) as object;
    await this.checkDetails(body, options.signal);
    return confirmedWrite(
      `${this.label} create`,
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'POST', path: `api/patient/${p}/${this.type}`, body, signal: options.signal },
          issueCreatedSchema,
          `${this.label} create`,
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
        return data;
      },
      undefined,
    );
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
    const body = parseInput(this.updateSchema, input, `${this.label} update`) as Record<string, unknown>;
    await this.checkDetails(body, options.signal);
    await guarded(options.expectedVersion, this.label, () => this.get(p, i, options));
    return confirmedWrite(
      `${this.label} update`,
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'PUT', path: `api/patient/${p}/${this.type}/${i}`, body, signal: options.signal },
          listItemSchema,
          `${this.label} update`,
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError(this.label);
        return data;
      },
      async () => {
        const stored = await this.get(p, i, options);
        return stored && holds(stored, body) ? stored : undefined;
      },
    );
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
    await confirmedWrite(
      `${this.label} delete`,
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'DELETE', path: `api/patient/${p}/${this.type}/${i}`, signal: options.signal },
          z.unknown(),
          `${this.label} delete`,
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError(this.label);
        return true as const;
      },
      async () => ((await this.get(p, i, options)) === undefined ? (true as const) : undefined),
    );
  }
}

/** `client.medicalProblems`: `/api/patient/{puuid}/medical_problem`. */
export class MedicalProblemsNamespace extends IssuesNamespace<MedicalProblemCreateInput, MedicalProblemUpdateInput> {
  protected readonly type = 'medical_problem' as const;
  protected readonly param = 'muuid';
  protected readonly op = 'medicalProblems' as const;
  protected readonly createSchema = medicalProblemCreateSchema;
  protected readonly updateSchema = medicalProblemUpdateSchema;
}

/** `client.allergies`: `/api/patient/{puuid}/allergy`. */
export class AllergiesNamespace extends IssuesNamespace<AllergyCreateInput, AllergyUpdateInput> {
  protected readonly type = 'allergy' as const;
  protected readonly param = 'auuid';
  protected readonly op = 'allergies' as const;
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

  /** Dates as the release wants them: 7.0.1 refuses a time (recorded), 8.x wants `Y-m-d H:i:s`. */
  private dates<T extends { begdate?: string | null | undefined; enddate?: string | null | undefined }>(
    body: T,
    profile: OpenEmrProfile,
  ): T {
    if (profile.medicationDates === 'Y-m-d H:i:s') return body;
    const day = (v: string | null | undefined): string | null | undefined => (v ? v.slice(0, 10) : v);
    const out = { ...body };
    if (body.begdate !== undefined) out.begdate = day(body.begdate);
    if (body.enddate !== undefined) out.enddate = day(body.enddate);
    return out;
  }

  /**
   * A patient's medication list; `[]` when none (OpenEMR answers 404). 8.0.0 answers 500 once a medication
   * was added through the API (recorded): an {@link HttpError}.
   * @param pid - numeric pid
   */
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
   * Adds a medication. Dates are sent in the release's format (`Y-m-d` on 7.0, `Y-m-d H:i:s` on 8.x).
   * @param pid - numeric pid
   * @param input - `title` and `begdate` required
   * @returns the new medication id
   */
  async create(pid: number | string, input: MedicationCreateInput, options: ReadOptions = {}): Promise<{ id: number }> {
    const path = this.base(pid);
    const profile = await this.ctx.profile(options.signal);
    const body = this.dates(parseInput(medicationCreateSchema, input, 'medication'), profile);
    return confirmedWrite(
      'medication create',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'POST', path, body, signal: options.signal },
          medicationWrittenSchema,
          'medication create',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
        return { id: data.id };
      },
      undefined,
    );
  }

  /**
   * Updates a medication. OpenEMR's PUT needs the whole record (8.0.0 answers `title` required to a partial
   * one, recorded), so the client merges the stored row with `input` and sends all of it.
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
    const patch = parseInput(medicationUpdateSchema, input, 'medication update');
    const profile = await this.ctx.profile(options.signal);
    const current = await this.get(pid, mid, options);
    if (current === undefined) throw new OpenEmrNotFoundError('medication');
    checkVersion(options.expectedVersion, 'medication', current);
    const merged: Record<string, unknown> = {
      title: current.title,
      begdate: current.begdate ?? undefined,
      enddate: current.enddate ?? undefined,
      diagnosis: current.diagnosis ?? undefined,
      comments: current.comments ?? undefined,
    };
    for (const [k, v] of Object.entries(patch)) if (v !== undefined) merged[k] = v;
    const body = this.dates(
      Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined && v !== '')) as {
        begdate?: string | null;
        enddate?: string | null;
      },
      profile,
    );
    await confirmedWrite(
      'medication update',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'PUT', path, body, signal: options.signal },
          medicationWrittenSchema,
          'medication update',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('medication');
        return data;
      },
      async () => {
        const stored = await this.get(pid, mid, options);
        return stored && holds(stored, patch) ? { id: stored.id } : undefined;
      },
    );
    const stored = await this.get(pid, mid, options);
    if (stored === undefined) throw new OpenEmrNotFoundError('medication');
    return stored;
  }

  /**
   * Removes a medication. 8.0.0 answers 500 although it deleted the row (recorded): confirmed by reading back.
   * @param pid - numeric pid
   * @param mid - numeric medication id
   */
  async delete(pid: number | string, mid: number | string, options: ReadOptions = {}): Promise<void> {
    await confirmedWrite(
      'medication delete',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'DELETE', path: `${this.base(pid)}/${id(mid, 'mid')}`, signal: options.signal },
          z.unknown(),
          'medication delete',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('medication');
        return true as const;
      },
      async () => ((await this.get(pid, mid, options)) === undefined ? (true as const) : undefined),
    );
  }
}

/** `client.prescriptions`: `/api/prescription`. */
export class PrescriptionsNamespace {
  constructor(private readonly ctx: Ctx) {}

  private async all(query: Record<string, string>, signal: AbortSignal | undefined): Promise<Prescription[]> {
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: 'api/prescription', query, signal },
      z.array(prescriptionSchema),
      'prescription list',
    );
    return data === NOT_FOUND ? [] : data;
  }

  /**
   * A patient's active prescriptions (`?patient.uuid=`). OpenEMR lists the medication list's entries here
   * too, with `uuid: null` (recorded on 8.0.0).
   * @param puuid - the patient's uuid
   */
  list(puuid: string, options: ReadOptions = {}): Promise<Prescription[]> {
    return this.all({ 'patient.uuid': uuid(puuid, 'puuid') }, options.signal);
  }

  /**
   * One prescription; `undefined` when none. 8.0.0 answers an SQL error page to the read (recorded): the
   * client finds it in the list there.
   * @param rxUuid - its uuid
   */
  async get(rxUuid: string, options: ReadOptions = {}): Promise<Prescription | undefined> {
    const key = uuid(rxUuid, 'uuid');
    const profile = await this.ctx.profile(options.signal);
    if (!profile.prescriptionGet) return (await this.all({}, options.signal)).find((r) => r.uuid === key);
    const { data } = await this.ctx.api.envelope(
      { method: 'GET', path: `api/prescription/${key}`, signal: options.signal },
      prescriptionSchema,
      'prescription read',
    );
    return data === NOT_FOUND ? undefined : data;
  }

  /**
   * Creates a prescription (8.2 only: 7.0 and 8.0.0 have no such route).
   * @param input - `patient_id` (numeric pid) and `drug` required
   * @returns `{id, uuid}`
   * @throws {@link OpenEmrUnsupportedError} on 7.0 and 8.0
   */
  async create(input: PrescriptionCreateInput, options: ReadOptions = {}): Promise<IssueCreated> {
    const body = parseInput(prescriptionCreateSchema, input, 'prescription');
    await requireSupported(this.ctx, 'prescriptions.create', options.signal);
    return confirmedWrite(
      'prescription create',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'POST', path: 'api/prescription', body, signal: options.signal },
          issueCreatedSchema,
          'prescription create',
        );
        if (data === NOT_FOUND)
          throw new CdssError('OpenEMR returned no identifiers for the prescription', { code: 'UNEXPECTED_RESPONSE' });
        return data;
      },
      undefined,
    );
  }

  /**
   * Deactivates a prescription (8.2 only; OpenEMR soft-deletes).
   * @param rxUuid - its uuid
   * @throws {@link OpenEmrUnsupportedError} on 7.0 and 8.0
   */
  async delete(rxUuid: string, options: ReadOptions = {}): Promise<void> {
    const key = uuid(rxUuid, 'uuid');
    await requireSupported(this.ctx, 'prescriptions.delete', options.signal);
    await confirmedWrite(
      'prescription delete',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'DELETE', path: `api/prescription/${key}`, signal: options.signal },
          z.unknown(),
          'prescription delete',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('prescription');
        return true as const;
      },
      async () => ((await this.get(key, options)) === undefined ? (true as const) : undefined),
    );
  }
}

/** `client.procedures`: `/api/procedure` (read only). */
export class ProceduresNamespace {
  constructor(private readonly ctx: Ctx) {}

  /**
   * A patient's procedure orders. OpenEMR's route ignores filters and returns every patient's rows
   * (notes §3.4), so the client filters by `puuid`. 8.0.0 answers 500 (an SQL syntax error, recorded).
   * @param puuid - the patient's uuid
   * @throws {@link OpenEmrUnsupportedError} on 8.0
   */
  async list(puuid: string, options: ReadOptions = {}): Promise<Procedure[]> {
    const key = uuid(puuid, 'puuid');
    await requireSupported(this.ctx, 'procedures.list', options.signal);
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
   * Books an appointment. `pc_startTime` is sent as `HH:MM` (OpenEMR requires exactly five characters);
   * 8.x refuses an empty `pc_hometext` (recorded on 8.0.0), so an empty comment is refused before sending.
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
    const profile = await this.ctx.profile(options.signal);
    if (profile.appointmentCommentRequired && body.pc_hometext.trim() === '') {
      throw new ValidationError('Invalid appointment', [
        { path: 'pc_hometext', message: `OpenEMR ${profile.version} requires a comment`, code: 'too_small' },
      ]);
    }
    return confirmedWrite(
      'appointment create',
      async () => {
        const data = await this.ctx.api.raw(
          { method: 'POST', path, body, signal: options.signal },
          medicationWrittenSchema,
          'appointment create',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('patient');
        return { id: data.id };
      },
      undefined,
    );
  }

  /**
   * Cancels (deletes) an appointment.
   * @param pid - numeric pid
   * @param eid - numeric appointment id
   */
  async delete(pid: number | string, eid: number | string, options: ReadOptions = {}): Promise<void> {
    await confirmedWrite(
      'appointment delete',
      async () => {
        const data = await this.ctx.api.raw(
          {
            method: 'DELETE',
            path: `api/patient/${id(pid, 'pid')}/appointment/${id(eid, 'eid')}`,
            signal: options.signal,
          },
          z.unknown(),
          'appointment delete',
        );
        if (data === NOT_FOUND) throw new OpenEmrNotFoundError('appointment');
        return true as const;
      },
      async () => ((await this.get(pid, eid, options)) === undefined ? (true as const) : undefined),
    );
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

  /**
   * One practitioner; `undefined` when none. 8.0.0 cannot show a practitioner created without a username
   * (404, recorded): `undefined` too.
   * @param pruuid - its uuid
   */
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
    return confirmedWrite(
      'practitioner create',
      async () => {
        const { data } = await this.ctx.api.envelope(
          { method: 'POST', path: 'api/practitioner', body, signal: options.signal },
          issueCreatedSchema,
          'practitioner create',
        );
        if (data === NOT_FOUND)
          throw new CdssError('OpenEMR returned no identifiers for the practitioner', {
            code: 'UNEXPECTED_RESPONSE',
          });
        return data;
      },
      undefined,
    );
  }

  /**
   * Updates a practitioner. 8.0.0 answers `data: []` although it stored the change (recorded): the client
   * reads the record back, which 8.0.0 cannot show for practitioners without a username.
   * @param pruuid - its uuid
   * @param input - fields to change
   * @returns the stored record, or `undefined` when OpenEMR stored the change but cannot show the record
   */
  async update(
    pruuid: string,
    input: PractitionerUpdateInput,
    options: WriteOptions = {},
  ): Promise<Practitioner | undefined> {
    const key = uuid(pruuid, 'pruuid');
    const body = parseInput(practitionerUpdateSchema, input, 'practitioner update');
    await guarded(options.expectedVersion, 'practitioner', () => this.get(key, options));
    return confirmedWrite(
      'practitioner update',
      async () => {
        const result = await this.ctx.api.envelope(
          { method: 'PUT', path: `api/practitioner/${key}`, body, signal: options.signal },
          practitionerSchema,
          'practitioner update',
        );
        if (result.data !== NOT_FOUND) return result.data;
        if (result.notFound === 'nonexistent') throw new OpenEmrNotFoundError('practitioner');
        // Stored, but answered with no record (8.0.0): show what is stored, if OpenEMR can.
        return this.get(key, options);
      },
      async () => {
        const stored = await this.get(key, options);
        return stored && holds(stored, body) ? stored : undefined;
      },
    );
  }
}

/** The OpenEMR client. Create it with {@link createOpenEmrClient}. */
export interface OpenEmrClient {
  /** The version profile in use (`undefined` until detected when the option is `auto`). */
  readonly version: OpenEmrVersion | undefined;
  /** The release profile (detects it on first call when the option is `auto`). */
  profile(options?: ReadOptions): Promise<OpenEmrProfile>;
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
  readonly documents: DocumentsNamespace;
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
 *   baseUrl: 'https://emr.example', version: '8.0',
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
    user: options.user,
    documentCategory: options.documentCategory,
  });
  if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid OpenEMR client options');
  const root = options.baseUrl.replace(/\/+$/, '');
  const site = options.site ?? 'default';
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
  let relogin: Relogin | undefined;
  if (auth === undefined) strategy = undefined;
  else if (isStrategy(auth)) {
    strategy = auth;
    const renew = auth.onUnauthorized?.bind(auth);
    relogin = renew === undefined ? undefined : () => renew();
  } else if (auth.kind === 'bearer') strategy = bearerAuth(auth.token);
  else if (auth.kind === 'password') {
    const provider = createPasswordTokenProvider({ ...auth, oauth });
    const s = oauth2Auth(provider, { clock });
    strategy = s;
    // After a logout a refresh succeeds but its token is refused (recorded on 8.0.0): log in with the password.
    relogin = async () => {
      provider.forceLogin();
      return (await s.onUnauthorized?.()) ?? false;
    };
  } else if (auth.kind === 'refreshToken')
    strategy = oauth2Auth(createRefreshTokenProvider({ ...auth, oauth }), { clock });
  else {
    const s = oauth2Auth(createClientCredentialsTokenProvider({ ...auth, oauth }), { clock });
    strategy = s;
    relogin = async () => (await s.onUnauthorized?.()) ?? false;
  }

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
  if (options.transport !== undefined) relogin = undefined;

  const configured = options.version ?? 'auto';
  let resolved: OpenEmrProfile | undefined = configured === 'auto' ? undefined : profileFor(configured);
  let detecting: Promise<OpenEmrProfile> | undefined;
  const profile = async (signal?: AbortSignal): Promise<OpenEmrProfile> => {
    if (resolved) return resolved;
    detecting ??= detectOpenEmrVersion(transport, signal)
      .then((v) => (resolved = profileFor(v)))
      .finally(() => {
        detecting = undefined;
      });
    return detecting;
  };
  const username =
    options.user?.username ??
    (auth !== undefined && !isStrategy(auth) && auth.kind === 'password' ? auth.username : undefined);
  const ctx: Ctx = {
    api: new StandardApiCaller(transport, relogin),
    profile,
    user: { username, group: options.user?.group ?? 'Default' },
    documentCategory: options.documentCategory ?? 'Lab_Report',
  };
  const fhir = new FhirNamespace(transport, relogin, profile);
  return {
    get version() {
      return resolved?.version;
    },
    profile: (o = {}) => profile(o.signal),
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
    documents: new DocumentsNamespace(ctx, fhir),
    fhir,
  };
}
