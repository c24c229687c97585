/**
 * The replay cases: for every recorded exchange, what the client does with it. Each case names the
 * recordings it proves, the operation and version profile, the steps msw serves (recorded verbatim, or
 * derived for follow-up reads the recordings do not hold, each saying where its shape comes from), the call,
 * and what the client must answer: a value, the right typed error, or a refusal before anything is sent.
 * Test-only.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { HttpError, ValidationError, type Clock } from '@cdss/core';
import { expect } from 'vitest';
import {
  BackendServicesKeys,
  OpenEmrAuthError,
  OpenEmrNotFoundError,
  OpenEmrOAuth,
  OpenEmrSessionEndedError,
  OpenEmrUnsupportedError,
  createBackendServicesTokenProvider,
  createOpenEmrClient,
  detectOpenEmrVersion,
  type OpenEmrClient,
  type OpenEmrClientOptions,
  type OpenEmrOperation,
  type OpenEmrVersion,
} from '../../src/index.js';
import { smartAuthorize, type SmartAuthorizeResult } from '../../src/testing.js';
import { recordedBaseUrl, recording, type RecordedExchange } from '../recordings.js';
import type { CapturedRequest, DerivedStep, RecordedStep, Step } from './harness.js';

/** What a call ended with. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** One replay case. */
export interface ReplayCase {
  /** The recordings this case proves (`8.0.0/11`). */
  files: string[];
  /** The client operation; `browser` for steps a browser does (the emulator parity suite holds those). */
  operation: OpenEmrOperation | 'browser';
  profile: OpenEmrVersion;
  title: string;
  /** What msw serves, in order; `[]` for a refusal before sending. */
  steps: Step[];
  /** The call (absent for browser steps). */
  run?: () => Promise<unknown>;
  /** What the outcome must be. */
  expect?: (outcome: Outcome, sent: CapturedRequest[]) => void;
}

const R = recording;
const rec = (id: string, opts: Omit<RecordedStep, 'exchange'> = {}): RecordedStep => ({ exchange: R(id), ...opts });

function body<T = Record<string, unknown>>(id: string): T {
  return R(id).responseBody as T;
}
function form(id: string): Record<string, string> {
  return (R(id).requestBody as { __form: Record<string, string> }).__form;
}
function json<T = Record<string, unknown>>(id: string): T {
  return R(id).requestBody as T;
}

/** A client pointed at the recorded server, with a bearer token (the recordings' tokens are redacted). */
function emr(id: string, profile: OpenEmrVersion, options: Partial<OpenEmrClientOptions> = {}): OpenEmrClient {
  return createOpenEmrClient({
    baseUrl: recordedBaseUrl(R(id)),
    version: profile,
    retry: false,
    auth: { kind: 'bearer', token: 'replayed-token' },
    user: { username: 'admin' },
    ...options,
  });
}

/** The OAuth client of the recorded registration the exchange used. */
function oauth(id: string, clientId: string | undefined, clientSecret?: string, clock?: Clock): OpenEmrOAuth {
  return new OpenEmrOAuth({ baseUrl: recordedBaseUrl(R(id)), clientId, clientSecret, clock });
}

const ok =
  (check: (value: never) => void = () => undefined) =>
  (o: Outcome): void => {
    if (!o.ok) throw new Error(`expected a value, got ${String(o.error)}`, { cause: o.error });
    check(o.value as never);
  };

function fails<E>(type: { isInstance?(v: unknown): boolean } | (new (...a: never[]) => E), check?: (e: E) => void) {
  return (o: Outcome): void => {
    if (o.ok) throw new Error(`expected an error, got ${JSON.stringify(o.value)?.slice(0, 200)}`);
    const is =
      'isInstance' in type && typeof type.isInstance === 'function'
        ? type.isInstance(o.error)
        : o.error instanceof (type as new (...a: never[]) => E);
    if (!is) throw new Error(`wrong error type: ${String(o.error)}`, { cause: o.error });
    check?.(o.error as E);
  };
}

/** A refusal before sending: the right error and not one request. */
function refused<E>(type: { isInstance?(v: unknown): boolean } | (new (...a: never[]) => E), check?: (e: E) => void) {
  const inner = fails(type, check);
  return (o: Outcome, sent: CapturedRequest[]): void => {
    expect(sent, 'nothing may be sent').toEqual([]);
    inner(o);
  };
}

const validation =
  (...fields: string[]) =>
  (e: ValidationError): void => {
    for (const f of fields) expect(e.fields, `names ${f}`).toContain(f);
  };

const uuidOf = (id: string): string =>
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec(R(id).path)![0];

/** A derived step answering JSON. */
function derived(
  method: string,
  path: string,
  status: number,
  answer: unknown,
  why: string,
  query?: Record<string, string>,
): DerivedStep {
  return { method, path, status, body: answer, why, query };
}

/** The recorded request's URL (redacted query values sent as they are). */
function recordedUrl(id: string): string {
  const url = new URL(R(id).path, recordedBaseUrl(R(id)));
  url.search = new URLSearchParams(R(id).query).toString();
  return url.toString();
}

/** The browser ended at the recorded redirect to the app (code and state). */
function expectRedirect(r: SmartAuthorizeResult, id: string): void {
  const recorded = new URL(R(id).responseHeaders['location'] ?? '');
  expect(r.redirect.origin + r.redirect.pathname).toBe(recorded.origin + recorded.pathname);
  expect(Object.fromEntries(r.redirect.searchParams)).toEqual(Object.fromEntries(recorded.searchParams));
}

/** A page the recordings saved once, served again where a browser meets it again. */
function derivedPage(method: string, path: string, from: string, why: string): DerivedStep {
  return {
    method,
    path,
    status: 200,
    contentType: R(from).responseHeaders['content-type'],
    body: R(from).responseBody,
    why,
  };
}

/** A derived 404 with no body: what the legacy routes answer for nothing (recorded-8.0.0 files 25, 64). */
function empty404(path: string, why: string, query?: Record<string, string>): DerivedStep {
  return { method: 'GET', path, status: 404, contentType: 'text/html; charset=utf-8', body: undefined, why, query };
}

// ---------------------------------------------------------------------- shapes for derived steps

/** 8.0.0's vitals row for encounter 4 of pid 2, as 7.0.1 lists one (file 23) with 8.0.0's ids and values. */
function vitalRow8(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const row = (body<Record<string, unknown>[]>('7.0.1/23')[0] ?? {}) as Record<string, unknown>;
  return {
    ...row,
    pid: 2,
    puuid: uuidOf('8.0.0/19'),
    eid: 4,
    euuid: body<{ data: { euuid: string } }>('8.0.0/19').data.euuid,
    id: 1,
    form_id: 1,
    ...overrides,
  };
}

const ENC = (): string => body<{ data: { euuid: string } }>('8.0.0/19').data.euuid;
const PDF = (): Buffer =>
  Buffer.from((R('8.0.0/61').requestBody as { __multipart: { text: string }[] }).__multipart[0]!.text, 'latin1');

function assertionClaims(sent: CapturedRequest): Record<string, unknown> {
  const assertion = (sent.body as { __form: Record<string, string> }).__form['client_assertion'] ?? '';
  return JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

/** A private key whose public half nobody registered: the recordings' key is not in them. */
const backendKey = (): { privateKey: ReturnType<typeof generateKeyPairSync>['privateKey']; kid: string } => ({
  privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  kid: 'cdss-bs-0e6e7b7f',
});

const BACKEND_CLIENT = 'G_d60aDw7PoCMdVekUHaezq1_n3TEb9i3qgjuQlYLmE';
const BACKEND_SCOPE = 'system/Patient.read system/Observation.read';

// ------------------------------------------------------------------------------------ 8.0.0

function cases80(): ReplayCase[] {
  const P2 = uuidOf('8.0.0/12');
  const V: OpenEmrVersion = '8.0';
  const reg = json<Record<string, unknown>>;
  const probe = form('8.0.0/05');
  const passwordClient = (id: string, extra: Partial<OpenEmrClientOptions> = {}): OpenEmrClient =>
    emr(id, V, {
      auth: {
        kind: 'password',
        clientId: probe['client_id'] ?? '',
        clientSecret: 'secret',
        username: 'admin',
        password: 'pass',
        scope: probe['scope'] ?? '',
      },
      ...extra,
    });
  return [
    // OAuth
    {
      files: ['8.0.0/1'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'registration answers 200 with the client',
      steps: [rec('8.0.0/1')],
      run: () => oauth('8.0.0/1', undefined).registerClient(reg('8.0.0/1') as never),
      expect: ok((r: { client_id: string; client_secret: string }) => {
        expect(r.client_id).toBe(body('8.0.0/1')['client_id']);
        expect(r.client_secret).toBeTruthy();
      }),
    },
    {
      files: ['8.0.0/2'],
      operation: 'oauth.discover',
      profile: V,
      title: 'OIDC discovery',
      steps: [rec('8.0.0/2')],
      run: () => oauth('8.0.0/2', undefined).discover(),
      expect: ok((d: { token_endpoint: string }) =>
        expect(d.token_endpoint).toBe('http://127.0.0.1:18300/oauth2/default/token'),
      ),
    },
    {
      files: ['8.0.0/3'],
      operation: 'fhir.smartConfiguration',
      profile: V,
      title: 'SMART configuration (its scopes_supported is an array in an array)',
      steps: [rec('8.0.0/3')],
      run: () => emr('8.0.0/3', V).fhir.smartConfiguration(),
      expect: ok((c: { token_endpoint: string; code_challenge_methods_supported: string[] }) => {
        expect(c.token_endpoint).toBe('http://127.0.0.1:18300/oauth2/default/token');
        expect(c.code_challenge_methods_supported).toEqual(['S256']);
      }),
    },
    {
      files: ['8.0.0/4'],
      operation: 'fhir.capabilities',
      profile: V,
      title: 'CapabilityStatement',
      steps: [rec('8.0.0/4')],
      run: () => emr('8.0.0/4', V).fhir.capabilities(),
      expect: ok((c: { fhirVersion: string }) => expect(c.fhirVersion).toBe('4.0.1')),
    },
    {
      files: ['8.0.0/4'],
      operation: 'fhir.capabilities',
      profile: V,
      title: 'the release is detected from the CapabilityStatement (8.x-only resource types)',
      steps: [
        {
          method: 'GET',
          path: '/apis/default/api/version',
          status: 401,
          body: { error: 'An error occurred', message: 'Unauthorized', code: 0 },
          why: '/api/version is not recorded; any answer that is not a version makes the client read the CapabilityStatement',
        },
        rec('8.0.0/4'),
      ],
      run: () => detectOpenEmrVersion(emr('8.0.0/4', V).transport),
      expect: ok((v: string) => expect(v).toBe('8.0')),
    },
    {
      files: ['8.0.0/5'],
      operation: 'oauth.passwordGrant',
      profile: V,
      title: 'password grant: the scope answered omits api:oemr/api:fhir',
      steps: [rec('8.0.0/5')],
      run: () =>
        oauth('8.0.0/5', probe['client_id'], 'secret').passwordGrant({
          username: 'admin',
          password: 'pass',
          scope: probe['scope'] ?? '',
        }),
      expect: ok((t: { accessToken: string; refreshToken: string; scopes: string[] }) => {
        expect(t.accessToken).toBeTruthy();
        expect(t.refreshToken).toBeTruthy();
        expect(t.scopes).not.toContain('api:oemr');
        expect(t.scopes).toContain('user/patient.crus');
      }),
    },
    {
      files: ['8.0.0/6'],
      operation: 'oauth.refresh',
      profile: V,
      title: 'refresh rotates the refresh token',
      steps: [rec('8.0.0/6')],
      run: () => oauth('8.0.0/6', form('8.0.0/6')['client_id'], 'secret').refresh('old-refresh-token'),
      expect: ok((t: { refreshToken: string }) => expect(t.refreshToken).toBeTruthy()),
    },
    {
      files: ['8.0.0/7'],
      operation: 'oauth.refresh',
      profile: V,
      title: 'a reused refresh token answers 401 invalid_request',
      steps: [rec('8.0.0/7')],
      run: () => oauth('8.0.0/7', form('8.0.0/7')['client_id'], 'secret').refresh('used-refresh-token'),
      expect: fails(OpenEmrAuthError, (e) => {
        expect(e.status).toBe(401);
        expect(e.error).toBe('invalid_request');
      }),
    },
    {
      files: ['8.0.0/7', '8.0.0/5'],
      operation: 'session.relogin',
      profile: V,
      title: 'a refresh token refused with 401 makes the password client log in again, once',
      steps: [
        rec('8.0.0/5'),
        derived('GET', '/apis/default/api/patient/' + P2, 200, body('8.0.0/12'), 'file 12, the patient read'),
        rec('8.0.0/7'),
        rec('8.0.0/5'),
        derived('GET', '/apis/default/api/patient/' + P2, 200, body('8.0.0/12'), 'file 12, the patient read'),
      ],
      run: async () => {
        let now = 0;
        const c = passwordClient('8.0.0/5', { clock: { now: () => now, sleep: () => Promise.resolve() } });
        await c.patients.get(P2);
        now += 3_600_000; // the access token expired: the client refreshes, which is refused, and logs in again
        return c.patients.get(P2);
      },
      expect: ok((p: { pid: number }) => expect(p.pid).toBe(2)),
    },
    {
      files: ['8.0.0/8'],
      operation: 'oauth.introspect',
      profile: V,
      title: 'introspection answers JSON labelled text/html',
      steps: [rec('8.0.0/8')],
      run: () => oauth('8.0.0/8', form('8.0.0/8')['client_id'], 'secret').introspect('a-token'),
      expect: ok((i: { active: boolean; exp: number; scope: string }) => {
        expect(i.active).toBe(true);
        expect(i.exp).toBe(1796585772);
        expect(i.scope).toContain('api:oemr');
      }),
    },
    {
      files: ['8.0.0/9'],
      operation: 'oauth.passwordGrant',
      profile: V,
      title: 'a wrong password: invalid_grant',
      steps: [rec('8.0.0/9')],
      run: () =>
        oauth('8.0.0/9', probe['client_id'], 'secret').passwordGrant({
          username: 'admin',
          password: 'wrong',
          scope: probe['scope'] ?? '',
        }),
      expect: fails(OpenEmrAuthError, (e) =>
        expect([e.status, e.error, e.hint]).toEqual([400, 'invalid_grant', 'Failed Authentication']),
      ),
    },
    {
      files: ['8.0.0/10'],
      operation: 'oauth.passwordGrant',
      profile: V,
      title: 'unregistered scopes are dropped silently: TokenSet.scopes says what was granted',
      steps: [rec('8.0.0/10')],
      run: () =>
        oauth('8.0.0/10', probe['client_id'], 'secret').passwordGrant({
          username: 'admin',
          password: 'pass',
          scope: form('8.0.0/10')['scope'] ?? '',
        }),
      expect: ok((t: { scopes: string[]; refreshToken?: string }) => {
        expect(t.scopes).toEqual(['openid', 'user/patient.crus']);
        expect(t.refreshToken).toBeUndefined();
      }),
    },
    // patients
    {
      files: ['8.0.0/11'],
      operation: 'patients.create',
      profile: V,
      title: 'create: 201 envelope with links []',
      steps: [rec('8.0.0/11')],
      run: () => emr('8.0.0/11', V).patients.create(json('8.0.0/11') as never),
      expect: ok((p: { pid: number; uuid: string }) => expect(p).toEqual({ pid: 2, uuid: P2 })),
    },
    {
      files: ['8.0.0/12'],
      operation: 'patients.get',
      profile: V,
      title: 'get: envelope with links [], ids as numbers',
      steps: [rec('8.0.0/12')],
      run: () => emr('8.0.0/12', V).patients.get(P2),
      expect: ok((p: { pid: number; fname: string; city: string }) =>
        expect([p.pid, p.fname, p.city]).toEqual([2, 'Zoë', 'Kraków']),
      ),
    },
    {
      files: ['8.0.0/13'],
      operation: 'patients.update',
      profile: V,
      title: 'partial update answers the whole record',
      steps: [rec('8.0.0/13')],
      run: () => emr('8.0.0/13', V).patients.update(P2, json('8.0.0/13') as never),
      expect: ok((p: { city: string; phone_cell: string }) =>
        expect([p.city, p.phone_cell]).toEqual(['Łódź', '555-0100']),
      ),
    },
    {
      files: ['8.0.0/14'],
      operation: 'patients.page',
      profile: V,
      title: 'search by a non-ASCII last name',
      steps: [rec('8.0.0/14')],
      run: () => emr('8.0.0/14', V).patients.list({ lname: 'Müller-Łukasz' }),
      expect: ok((ps: { uuid: string }[]) => expect(ps.map((p) => p.uuid)).toEqual([P2])),
    },
    {
      files: ['8.0.0/15'],
      operation: 'patients.page',
      profile: V,
      title: 'a page: links.next says there is more (its URL uses _count, so the client builds its own)',
      steps: [rec('8.0.0/15')],
      run: () => emr('8.0.0/15', V).patients.page({}, { limit: 2 }),
      expect: ok((p: { patients: unknown[]; hasMore: boolean }) => {
        expect(p.patients).toHaveLength(2);
        expect(p.hasMore).toBe(true);
      }),
    },
    {
      files: ['8.0.0/17'],
      operation: 'patients.get',
      profile: V,
      title: 'an unknown uuid: 400 validationErrors.uuid is undefined',
      steps: [rec('8.0.0/17')],
      run: () => emr('8.0.0/17', V).patients.get('00000000-0000-4000-8000-000000000000'),
      expect: ok((p: unknown) => expect(p).toBeUndefined()),
    },
    {
      files: ['8.0.0/18'],
      operation: 'patients.update',
      profile: V,
      title: 'an update of an unknown uuid ({uuid: {<uuid>: "does not exist"}}) is OpenEmrNotFoundError',
      steps: [rec('8.0.0/18')],
      run: () => emr('8.0.0/18', V).patients.update('00000000-0000-4000-8000-000000000000', { city: 'X' }),
      expect: fails(OpenEmrNotFoundError),
    },
    // encounters
    {
      files: ['8.0.0/19'],
      operation: 'encounters.create',
      profile: V,
      title: 'create answers 200 with the record (facility_id null, provider_id 0)',
      steps: [rec('8.0.0/19')],
      run: () =>
        emr('8.0.0/19', V).encounters.create(P2, {
          date: '2025-11-20',
          reason: 'Kopfschmerz – MRT',
          pc_catid: '5',
          class_code: 'AMB',
        }),
      expect: ok((e: { eid: number; euuid: string; pid: number }) => expect([e.eid, e.pid]).toEqual([4, 2])),
    },
    {
      files: ['8.0.0/20'],
      operation: 'encounters.list',
      profile: V,
      title: 'list',
      steps: [rec('8.0.0/20')],
      run: () => emr('8.0.0/20', V).encounters.list(P2),
      expect: ok((es: { eid: number }[]) => expect(es.map((e) => e.eid)).toEqual([4])),
    },
    {
      files: ['8.0.0/21', '8.0.0/22'],
      operation: 'encounters.update',
      profile: V,
      title: 'update: the client adds user and group (without them 8.0.0 refuses, file 21)',
      steps: [rec('8.0.0/22', { body: 'subset' })],
      run: () => emr('8.0.0/22', V).encounters.update(P2, ENC(), { reason: 'MRT review: stable' }),
      expect: (o, sent) => {
        ok((e: { reason: string }) => expect(e.reason).toBe('MRT review: stable'))(o);
        expect(sent[0]?.body).toEqual({ ...json('8.0.0/21'), user: 'admin', group: 'Default' });
      },
    },
    {
      files: ['8.0.0/21'],
      operation: 'encounters.update',
      profile: V,
      title: 'without a user to send, the client refuses before sending what 8.0.0 refuses',
      steps: [],
      run: () => emr('8.0.0/21', V, { user: undefined }).encounters.update(P2, ENC(), json('8.0.0/21') as never),
      expect: refused(ValidationError, validation('user')),
    },
    {
      files: ['8.0.0/23'],
      operation: 'encounters.list',
      profile: V,
      title: 'no encounters: 200 data [] links []',
      steps: [rec('8.0.0/23')],
      run: () => emr('8.0.0/23', V).encounters.list(uuidOf('8.0.0/23')),
      expect: ok((es: unknown[]) => expect(es).toEqual([])),
    },
    {
      files: ['8.0.0/24'],
      operation: 'encounters.create',
      profile: V,
      title: 'a server-side validation error comes with 200: ValidationError naming class_code',
      steps: [rec('8.0.0/24')],
      run: () => emr('8.0.0/24', V).encounters.create(P2, { pc_catid: '5', class_code: 'XYZ' }),
      expect: fails(ValidationError, validation('class_code')),
    },
    // vitals
    {
      files: ['8.0.0/25'],
      operation: 'vitals.list',
      profile: V,
      title: 'none: 404 with no body is []',
      steps: [rec('8.0.0/25')],
      run: () => emr('8.0.0/25', V).vitals.list({ pid: 2, eid: 4 }),
      expect: ok((vs: unknown[]) => expect(vs).toEqual([])),
    },
    {
      files: ['8.0.0/25', '8.0.0/26'],
      operation: 'vitals.create',
      profile: V,
      title: 'create answers 500 although stored: the client finds the new row by listing, never re-sends',
      steps: [
        rec('8.0.0/25'),
        rec('8.0.0/26'),
        derived(
          'GET',
          '/apis/default/api/patient/2/encounter/4/vital',
          200,
          [vitalRow8({ bps: '128', bpd: '82', weight: '150.500000', pulse: '72.000000', note: 'nach Chemo' })],
          'the row file 26 stored, listed as 7.0.1 lists vitals (file 23: decimals as "150.500000")',
        ),
      ],
      run: () => emr('8.0.0/26', V).vitals.create({ pid: 2, eid: 4 }, json('8.0.0/26') as never),
      expect: (o, sent) => {
        ok((v: { vid: number }) => expect(v).toEqual({ vid: 1 }))(o);
        expect(sent.filter((r) => r.method === 'POST')).toHaveLength(1);
      },
    },
    {
      files: ['8.0.0/26'],
      operation: 'vitals.create',
      profile: V,
      title: 'a 500 that did not store anything is reported as the server failure',
      steps: [
        rec('8.0.0/25'),
        rec('8.0.0/26'),
        empty404('/apis/default/api/patient/2/encounter/4/vital', 'nothing stored: the empty list of file 25'),
      ],
      run: () => emr('8.0.0/26', V).vitals.create({ pid: 2, eid: 4 }, json('8.0.0/26') as never),
      expect: fails(HttpError, (e) => expect(e.status).toBe(500)),
    },
    {
      files: ['8.0.0/28'],
      operation: 'vitals.update',
      profile: V,
      title: 'update answers 500 although stored: confirmed by reading the row back (decimals compared as numbers)',
      steps: [
        rec('8.0.0/28'),
        derived(
          'GET',
          '/apis/default/api/patient/2/encounter/4/vital/1',
          200,
          vitalRow8({ pulse: '70.000000' }),
          'file 23 row shape, pulse as stored by file 28',
        ),
        derived(
          'GET',
          '/apis/default/api/patient/2/encounter/4/vital/1',
          200,
          vitalRow8({ pulse: '70.000000' }),
          'the same row, read to answer',
        ),
      ],
      run: () => emr('8.0.0/28', V).vitals.update({ pid: 2, eid: 4 }, 1, json('8.0.0/28') as never),
      expect: ok((v: { pulse: string }) => expect(v.pulse).toBe('70.000000')),
    },
    {
      files: ['8.0.0/28'],
      operation: 'vitals.update',
      profile: V,
      title: 'when the read-back shows the old value, the 500 is reported',
      steps: [
        rec('8.0.0/28'),
        derived(
          'GET',
          '/apis/default/api/patient/2/encounter/4/vital/1',
          200,
          vitalRow8({ pulse: '72.000000' }),
          'the row of file 26, unchanged',
        ),
      ],
      run: () => emr('8.0.0/28', V).vitals.update({ pid: 2, eid: 4 }, 1, json('8.0.0/28') as never),
      expect: fails(HttpError, (e) => expect(e.status).toBe(500)),
    },
    // SOAP notes
    {
      files: ['8.0.0/29'],
      operation: 'soapNotes.create',
      profile: V,
      title: 'create: 201 {sid, fid}',
      steps: [rec('8.0.0/29')],
      run: () => emr('8.0.0/29', V).soapNotes.create({ pid: 2, eid: 4 }, json('8.0.0/29') as never),
      expect: ok((n: unknown) => expect(n).toEqual({ sid: 1, fid: 5 })),
    },
    {
      files: ['8.0.0/30'],
      operation: 'soapNotes.list',
      profile: V,
      title: 'the same note listed twice is kept once',
      steps: [rec('8.0.0/30')],
      run: () => emr('8.0.0/30', V).soapNotes.list({ pid: 2, eid: 4 }),
      expect: ok((ns: { id: number }[]) => expect(ns.map((n) => n.id)).toEqual([1])),
    },
    {
      files: ['8.0.0/31'],
      operation: 'soapNotes.update',
      profile: V,
      title: 'update sends the whole note (merged with the stored one)',
      steps: [
        derived(
          'GET',
          '/apis/default/api/patient/2/encounter/4/soap_note/1',
          200,
          body<unknown[]>('8.0.0/30')[0],
          'the note as file 30 lists it',
        ),
        rec('8.0.0/31'),
        derived(
          'GET',
          '/apis/default/api/patient/2/encounter/4/soap_note/1',
          200,
          { ...(body<unknown[]>('8.0.0/30')[0] as object), assessment: 'Stabil' },
          'file 30 row with the update of file 31',
        ),
      ],
      run: () => emr('8.0.0/31', V).soapNotes.update({ pid: 2, eid: 4 }, 1, { assessment: 'Stabil' }),
      expect: ok((n: { assessment: string; plan: string }) =>
        expect([n.assessment, n.plan]).toEqual(['Stabil', 'MRT in 8 Wochen']),
      ),
    },
    // problems
    {
      files: ['8.0.0/32'],
      operation: 'medicalProblems.create',
      profile: V,
      title: 'create answers 200 (not 201)',
      steps: [rec('8.0.0/32')],
      run: () => emr('8.0.0/32', V).medicalProblems.create(P2, json('8.0.0/32') as never),
      expect: ok((p: { id: number }) => expect(p.id).toBe(9)),
    },
    {
      files: ['8.0.0/33', '8.0.0/35'],
      operation: 'medicalProblems.list',
      profile: V,
      title: 'the per-patient list answers [] for rows that exist (file 33): the client filters the global list',
      steps: [rec('8.0.0/35')],
      run: () => emr('8.0.0/35', V).medicalProblems.list(P2),
      expect: (o, sent) => {
        ok((ps: { title: string; diagnosis: string }[]) =>
          expect(ps.map((p) => [p.title, p.diagnosis])).toEqual([['Glioblastom', 'ICD10:C71.2']]),
        )(o);
        expect(sent.map((r) => r.path)).not.toContain(R('8.0.0/33').path);
      },
    },
    {
      files: ['8.0.0/34', '8.0.0/35'],
      operation: 'medicalProblems.get',
      profile: V,
      title: 'the per-patient read answers [] (file 34): found in the global list',
      steps: [rec('8.0.0/35')],
      run: () => emr('8.0.0/35', V).medicalProblems.get(P2, R('8.0.0/34').path.split('/').at(-1)!),
      expect: ok((p: { uuid: string }) => expect(p.uuid).toBe(body<{ data: { uuid: string } }>('8.0.0/32').data.uuid)),
    },
    {
      files: ['8.0.0/37'],
      operation: 'medicalProblems.delete',
      profile: V,
      title: 'deleting again: {UUID: ["invalid or nonexisting value"]} is OpenEmrNotFoundError',
      steps: [rec('8.0.0/37')],
      run: () => emr('8.0.0/37', V).medicalProblems.delete(P2, R('8.0.0/37').path.split('/').at(-1)!),
      expect: fails(OpenEmrNotFoundError),
    },
    // allergies
    {
      files: ['8.0.0/38'],
      operation: 'allergies.create',
      profile: V,
      title: '8.0.0 drops reaction (file 38): refused before sending instead of lost',
      steps: [],
      run: () => emr('8.0.0/38', V).allergies.create(P2, json('8.0.0/38') as never),
      expect: refused(ValidationError, validation('reaction')),
    },
    {
      files: ['8.0.0/38'],
      operation: 'allergies.create',
      profile: '8.2',
      title: 'where the profile stores reaction, the recorded create answers the ids',
      steps: [rec('8.0.0/38')],
      run: () => emr('8.0.0/38', '8.2').allergies.create(P2, json('8.0.0/38') as never),
      expect: ok((a: { id: number }) => expect(a.id).toBe(11)),
    },
    {
      files: ['8.0.0/39'],
      operation: 'allergies.update',
      profile: V,
      title: 'an update of only severity_al answers 500 on 8.0.0: refused before sending',
      steps: [],
      run: () =>
        emr('8.0.0/39', V).allergies.update(P2, R('8.0.0/39').path.split('/').at(-1)!, json('8.0.0/39') as never),
      expect: refused(ValidationError, validation('severity_al')),
    },
    {
      files: ['8.0.0/39'],
      operation: 'allergies.update',
      profile: '8.2',
      title: 'a 500 to an update is checked by reading back: not stored, so the failure is reported',
      steps: [
        rec('8.0.0/39'),
        derived(
          'GET',
          R('8.0.0/39').path,
          200,
          {
            validationErrors: [],
            internalErrors: [],
            data: {
              ...(body<{ data: unknown[] }>('8.0.0/35').data[0] as object),
              id: 11,
              uuid: R('8.0.0/39').path.split('/').at(-1),
              type: 'allergy',
              title: 'Gadolinium',
              diagnosis: null,
              severity_al: null,
            },
            links: [],
          },
          'the allergy of file 38, in the row shape of file 35, severity_al unchanged',
        ),
      ],
      run: () =>
        emr('8.0.0/39', '8.2').allergies.update(P2, R('8.0.0/39').path.split('/').at(-1)!, json('8.0.0/39') as never),
      expect: fails(HttpError, (e) => expect(e.status).toBe(500)),
    },
    // medications
    {
      files: ['8.0.0/40'],
      operation: 'medications.create',
      profile: V,
      title: 'create with a date-time begdate: 201 {id}',
      steps: [rec('8.0.0/40')],
      run: () =>
        emr('8.0.0/40', V).medications.create(2, {
          title: 'Temozolomid',
          begdate: '2025-03-01',
          diagnosis: 'RXCUI:37776',
        }),
      expect: ok((m: unknown) => expect(m).toEqual({ id: 13 })),
    },
    {
      files: ['8.0.0/41'],
      operation: 'medications.list',
      profile: V,
      title: 'a list that answers 500 is an HttpError 500 (server defect)',
      steps: [rec('8.0.0/41')],
      run: () => emr('8.0.0/41', V).medications.list(2),
      expect: fails(HttpError, (e) => expect(e.status).toBe(500)),
    },
    {
      files: ['8.0.0/42'],
      operation: 'medications.update',
      profile: V,
      title: 'a partial PUT is refused (file 42): the client sends the whole record',
      steps: [
        derived(
          'GET',
          '/apis/default/api/patient/2/medication/13',
          200,
          {
            ...(body<{ data: unknown[] }>('8.0.0/35').data[0] as object),
            id: 13,
            uuid: null,
            type: 'medication',
            title: 'Temozolomid',
            begdate: '2025-03-01 00:00:00',
            enddate: null,
            diagnosis: 'RXCUI:37776',
          },
          'the medication of file 40 in the lists-row shape of file 35',
        ),
        rec('8.0.0/42', { body: 'ignore' }),
      ],
      run: () => emr('8.0.0/42', V).medications.update(2, 13, { enddate: '2025-04-01' }),
      expect: (o, sent) => {
        expect(sent[1]?.body).toEqual({
          title: 'Temozolomid',
          begdate: '2025-03-01 00:00:00',
          enddate: '2025-04-01 00:00:00',
          diagnosis: 'RXCUI:37776',
        });
        // Had OpenEMR still refused, the refusal names the field:
        fails(ValidationError, validation('title'))(o);
      },
    },
    {
      files: ['8.0.0/44'],
      operation: 'medications.delete',
      profile: V,
      title: 'delete answers 500 although deleted: the read-back finds nothing, so it succeeded',
      steps: [
        rec('8.0.0/44'),
        empty404('/apis/default/api/patient/2/medication/14', 'a deleted row reads as the empty answer of file 25'),
      ],
      run: () => emr('8.0.0/44', V).medications.delete(2, 14),
      expect: (o, sent) => {
        ok()(o);
        expect(sent.filter((r) => r.method === 'DELETE')).toHaveLength(1);
      },
    },
    // prescriptions
    {
      files: ['8.0.0/45'],
      operation: 'prescriptions.create',
      profile: V,
      title: 'no POST /api/prescription in 8.0.0: refused before sending',
      steps: [],
      run: () => emr('8.0.0/45', V).prescriptions.create(json('8.0.0/45') as never),
      expect: refused(OpenEmrUnsupportedError),
    },
    {
      files: ['8.0.0/45'],
      operation: 'prescriptions.create',
      profile: '8.2',
      title: 'a server without the route answers 404 Route not found: an HttpError, nothing stored',
      steps: [rec('8.0.0/45')],
      run: () => emr('8.0.0/45', '8.2').prescriptions.create(json('8.0.0/45') as never),
      expect: fails(HttpError, (e) => expect(e.status).toBe(404)),
    },
    {
      files: ['8.0.0/46'],
      operation: 'prescriptions.list',
      profile: V,
      title: 'list, with the medication list’s rows (uuid null)',
      steps: [rec('8.0.0/46')],
      run: () => emr('8.0.0/46', V).prescriptions.list(P2),
      expect: ok((rs: { uuid: string | null; drug: string }[]) =>
        expect(rs.map((r) => r.drug)).toEqual(['Temozolomide 140 mg', 'Temozolomid']),
      ),
    },
    {
      files: ['8.0.0/47', '8.0.0/46'],
      operation: 'prescriptions.get',
      profile: V,
      title: 'the read answers an SQL error page (file 47): the client finds it in the list',
      steps: [
        derived('GET', '/apis/default/api/prescription', 200, body('8.0.0/46'), 'the list of file 46, unfiltered'),
      ],
      run: () => emr('8.0.0/47', V).prescriptions.get(uuidOf('8.0.0/47')),
      expect: ok((r: { drug: string }) => expect(r.drug).toBe('Temozolomide 140 mg')),
    },
    {
      files: ['8.0.0/47'],
      operation: 'prescriptions.get',
      profile: '8.2',
      title: 'an HTML error page where JSON was expected is an HttpError (server failure)',
      steps: [rec('8.0.0/47')],
      run: () => emr('8.0.0/47', '8.2').prescriptions.get(uuidOf('8.0.0/47')),
      expect: fails(HttpError, (e) => expect(e.message).toMatch(/non-JSON/)),
    },
    {
      files: ['8.0.0/48'],
      operation: 'procedures.list',
      profile: V,
      title: 'the procedure list answers 500 on 8.0.0: refused before sending',
      steps: [],
      run: () => emr('8.0.0/48', V).procedures.list(P2),
      expect: refused(OpenEmrUnsupportedError),
    },
    {
      files: ['8.0.0/48'],
      operation: 'procedures.list',
      profile: '8.2',
      title: 'a 500 with an HTML page is an HttpError 500',
      steps: [rec('8.0.0/48')],
      run: () => emr('8.0.0/48', '8.2').procedures.list(P2),
      expect: fails(HttpError, (e) => expect(e.status).toBe(500)),
    },
    {
      files: ['8.0.0/49'],
      operation: 'appointments.create',
      profile: V,
      title: 'an empty pc_hometext is refused before sending (8.0.0 refuses it)',
      steps: [],
      run: () =>
        emr('8.0.0/49', V).appointments.create(2, { ...(json('8.0.0/49') as object), pc_hometext: '' } as never),
      expect: refused(ValidationError, validation('pc_hometext')),
    },
    {
      files: ['8.0.0/49'],
      operation: 'appointments.create',
      profile: '7.0',
      title: 'where the profile allows it, OpenEMR’s bare refusal (200) is a ValidationError naming pc_hometext',
      steps: [rec('8.0.0/49')],
      run: () => emr('8.0.0/49', '7.0').appointments.create(2, json('8.0.0/49') as never),
      expect: fails(ValidationError, validation('pc_hometext')),
    },
    // practitioners
    {
      files: ['8.0.0/51'],
      operation: 'practitioners.create',
      profile: V,
      title: 'create: 201 envelope links []',
      steps: [rec('8.0.0/51')],
      run: () => emr('8.0.0/51', V).practitioners.create(json('8.0.0/51') as never),
      expect: ok((p: { id: number }) => expect(p.id).toBe(6)),
    },
    {
      files: ['8.0.0/52'],
      operation: 'practitioners.get',
      profile: V,
      title: 'a practitioner without a username reads as 404 data []: undefined',
      steps: [rec('8.0.0/52')],
      run: () => emr('8.0.0/52', V).practitioners.get(uuidOf('8.0.0/52')),
      expect: ok((p: unknown) => expect(p).toBeUndefined()),
    },
    {
      files: ['8.0.0/53', '8.0.0/52'],
      operation: 'practitioners.update',
      profile: V,
      title: 'update answers data [] although stored: success, and the record cannot be shown',
      steps: [rec('8.0.0/53'), rec('8.0.0/52')],
      run: () => emr('8.0.0/53', V).practitioners.update(uuidOf('8.0.0/53'), json('8.0.0/53') as never),
      expect: ok((p: unknown) => expect(p).toBeUndefined()),
    },
    // FHIR
    {
      files: ['8.0.0/54'],
      operation: 'fhir.read',
      profile: V,
      title: 'an unknown id: 404 [] is undefined',
      steps: [rec('8.0.0/54')],
      run: () => emr('8.0.0/54', V).fhir.read('Patient', '00000000-0000-4000-8000-000000000000'),
      expect: ok((p: unknown) => expect(p).toBeUndefined()),
    },
    {
      files: ['8.0.0/55'],
      operation: 'fhir.search',
      profile: V,
      title: 'search by a non-ASCII family name',
      steps: [rec('8.0.0/55')],
      run: () => emr('8.0.0/55', V).fhir.search('Patient', { family: 'Müller-Łukasz' }),
      expect: ok((b: { entry: { resource: { id: string } }[] }) =>
        expect(b.entry.map((e) => e.resource.id)).toEqual([P2]),
      ),
    },
    {
      files: ['8.0.0/57'],
      operation: 'fhir.create',
      profile: V,
      title: 'a name without use is sent as official; a bare {validationErrors} 400 is a ValidationError naming fields',
      steps: [rec('8.0.0/57', { body: 'ignore' })],
      run: () => emr('8.0.0/57', V).fhir.create(json('8.0.0/57') as never),
      expect: (o, sent) => {
        expect((sent[0]?.body as { name: { use: string }[] }).name[0]?.use).toBe('official');
        fails(ValidationError, validation('fname', 'lname'))(o);
      },
    },
    {
      files: ['8.0.0/58'],
      operation: 'fhir.update',
      profile: V,
      title: 'a Patient PUT as read answers 500: sent without meta/text/extension, confirmed by reading back',
      steps: [
        rec('8.0.0/58', { body: 'ignore' }),
        derived(
          'GET',
          R('8.0.0/58').path,
          200,
          json('8.0.0/58'),
          'the Patient as the PUT of file 58 sent it, which is how it was read',
        ),
      ],
      run: () => emr('8.0.0/58', V).fhir.update(json('8.0.0/58') as never),
      expect: (o, sent) => {
        const put = sent[0]?.body as Record<string, unknown>;
        expect(Object.keys(put)).not.toContain('meta');
        expect(Object.keys(put)).not.toContain('extension');
        ok((p: { id: string }) => expect(p.id).toBe(uuidOf('8.0.0/58')))(o);
      },
    },
    {
      files: ['8.0.0/59'],
      operation: 'fhir.create',
      profile: V,
      title: 'an Organization without an NPI is refused before sending (OpenEMR requires facility_npi)',
      steps: [],
      run: () => emr('8.0.0/59', V).fhir.create(json('8.0.0/59') as never),
      expect: refused(ValidationError, validation('identifier')),
    },
    {
      files: ['8.0.0/59'],
      operation: 'fhir.create',
      profile: V,
      title: 'OpenEMR’s own refusal, a bare {validationErrors}, names facility_npi',
      steps: [rec('8.0.0/59', { body: 'ignore' })],
      run: () =>
        emr('8.0.0/59', V).fhir.create({
          resourceType: 'Organization',
          name: 'Lakeside Imaging',
          identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }],
        }),
      expect: fails(ValidationError, validation('facility_npi')),
    },
    {
      files: ['8.0.0/60', '8.0.0/5'],
      operation: 'session.relogin',
      profile: V,
      title: 'after a logout (400 "revoked or logged out") the password client logs in again once and retries once',
      steps: [
        rec('8.0.0/5'),
        rec('8.0.0/60'),
        rec('8.0.0/5'),
        derived(
          'GET',
          '/apis/default/api/patient',
          200,
          {
            ...body<Record<string, unknown>>('8.0.0/15'),
            data: body<{ data: unknown[] }>('8.0.0/15').data.slice(0, 1),
          },
          'the first row of the page of file 15',
          { _limit: '1', _offset: '0' },
        ),
      ],
      run: () => passwordClient('8.0.0/60').patients.page({}, { limit: 1 }),
      expect: ok((p: { patients: unknown[] }) => expect(p.patients).toHaveLength(1)),
    },
    {
      files: ['8.0.0/60'],
      operation: 'session.relogin',
      profile: V,
      title: 'a client that cannot log in by itself says the session ended',
      steps: [rec('8.0.0/60')],
      run: () => emr('8.0.0/60', V).patients.page({}, { limit: 1 }),
      expect: fails(OpenEmrSessionEndedError),
    },
    {
      files: ['8.0.0/60', '8.0.0/6'],
      operation: 'session.relogin',
      profile: V,
      title: 'a refresh-token client cannot log in by itself (a refresh would be refused the same way): session ended',
      steps: [rec('8.0.0/6'), rec('8.0.0/60')],
      run: () =>
        emr('8.0.0/60', V, {
          auth: {
            kind: 'refreshToken',
            clientId: form('8.0.0/6')['client_id'] ?? '',
            clientSecret: 'secret',
            refreshToken: 'rt',
          },
        }).patients.page({}, { limit: 1 }),
      expect: fails(OpenEmrSessionEndedError),
    },
    // documents
    {
      files: ['8.0.0/61', '8.0.0/63', '8.0.0/64'],
      operation: 'documents.upload',
      profile: V,
      title: 'a stored upload answers 500: the client finds it by its SHA3-512 in the category listing, uploads once',
      steps: [
        empty404('/apis/default/api/patient/2/document', 'an empty category answers 404 with no body (file 64)', {
          path: '/Categories/Lab_Report',
        }),
        rec('8.0.0/61'),
        rec('8.0.0/63'),
      ],
      run: () =>
        emr('8.0.0/61', V).documents.upload({
          pid: 2,
          content: PDF(),
          filename: 'cdss-probe-report.pdf',
          contentType: 'application/pdf',
          category: 'Lab Report',
        }),
      expect: (o, sent) => {
        ok((d: { id: number; created: boolean; hash: string }) => {
          expect([d.id, d.created]).toEqual([5, true]);
          expect(d.hash).toBe(createHash('sha3-512').update(PDF()).digest('hex'));
        })(o);
        expect(sent.filter((r) => r.method === 'POST')).toHaveLength(1);
      },
    },
    {
      files: ['8.0.0/63'],
      operation: 'documents.upload',
      profile: V,
      title: 'the same file already in the category is not uploaded again (an outbox may retry)',
      steps: [rec('8.0.0/63')],
      run: () =>
        emr('8.0.0/63', V).documents.upload({
          pid: 2,
          content: PDF(),
          filename: 'cdss-probe-report.pdf',
          contentType: 'application/pdf',
        }),
      expect: ok((d: { id: number; created: boolean }) => expect([d.id, d.created]).toEqual([5, false])),
    },
    {
      files: ['8.0.0/62'],
      operation: 'documents.upload',
      profile: V,
      title: 'an unknown category answers 404 with no body: a ValidationError naming category',
      steps: [
        empty404(
          '/apis/default/api/patient/2/document',
          'listing an unknown category answers as an empty one (file 64)',
          { path: '/Categories/No_Such_Category' },
        ),
        rec('8.0.0/62'),
      ],
      run: () =>
        emr('8.0.0/62', V).documents.upload({
          pid: 2,
          content: PDF(),
          filename: 'cdss-probe-report.pdf',
          contentType: 'application/pdf',
          category: 'No_Such_Category',
        }),
      expect: fails(ValidationError, validation('category')),
    },
    {
      files: ['8.0.0/63'],
      operation: 'documents.list',
      profile: V,
      title: 'a category lists as a bare array',
      steps: [rec('8.0.0/63')],
      run: () => emr('8.0.0/63', V).documents.list(2, 'Lab_Report'),
      expect: ok((ds: { id: number; filename: string }[]) =>
        expect(ds.map((d) => [d.id, d.filename])).toEqual([[5, 'cdss-probe-report.pdf']]),
      ),
    },
    {
      files: ['8.0.0/64'],
      operation: 'documents.list',
      profile: V,
      title: 'an empty category answers 404 with no body: []',
      steps: [rec('8.0.0/64')],
      run: () => emr('8.0.0/64', V).documents.list(2, 'Medical_Record'),
      expect: ok((ds: unknown[]) => expect(ds).toEqual([])),
    },
    {
      files: ['8.0.0/65', '8.0.0/67'],
      operation: 'documents.read',
      profile: V,
      title: 'the standard-API download answers 403 (file 65): the client reads FHIR Binary, byte for byte',
      steps: [rec('8.0.0/67')],
      run: () => emr('8.0.0/67', V).documents.read(uuidOf('8.0.0/67')),
      expect: (o, sent) => {
        ok((d: { content: Buffer; contentType: string; filename: string }) => {
          expect(d.content.equals(PDF())).toBe(true);
          expect([d.contentType, d.filename]).toEqual(['application/pdf', 'cdss-probe-report.pdf']);
        })(o);
        expect(sent.map((r) => r.path)).not.toContain(R('8.0.0/65').path);
      },
    },
    {
      files: ['8.0.0/66'],
      operation: 'documents.read',
      profile: V,
      title: 'DocumentReference search by patient finds the upload and names its Binary',
      steps: [rec('8.0.0/66')],
      run: () => emr('8.0.0/66', V).documents.references(P2),
      expect: ok((rs: { category: { text: string }[]; content: { attachment: { url: string } }[] }[]) => {
        expect(rs[0]?.category[0]?.text).toBe('Lab Report');
        expect(rs[0]?.content[0]?.attachment.url).toMatch(/\/fhir\/Binary\/[0-9a-f-]{36}$/);
      }),
    },
    // SMART standalone launch
    {
      files: ['8.0.0/68'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'a public app with token_endpoint_auth_method "none" is refused before sending (OpenEMR answers 400)',
      steps: [],
      run: () => oauth('8.0.0/68', undefined).registerClient(json('8.0.0/68') as never),
      expect: refused(ValidationError, validation('token_endpoint_auth_method')),
    },
    {
      files: ['8.0.0/69'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'a public app registers (client_secret "")',
      steps: [rec('8.0.0/69')],
      run: () => oauth('8.0.0/69', undefined).registerClient(json('8.0.0/69') as never),
      expect: ok((r: { client_id: string; client_secret: string }) =>
        expect([r.client_id, r.client_secret]).toEqual([body('8.0.0/69')['client_id'], '']),
      ),
    },
    {
      files: ['8.0.0/70'],
      operation: 'oauth.authorizationUrl',
      profile: V,
      title: 'the authorize URL is the recorded one (PKCE S256, aud)',
      steps: [],
      run: async () => {
        const q = R('8.0.0/70').query;
        return oauth('8.0.0/70', q['client_id']).authorizationUrl({
          redirectUri: q['redirect_uri'] ?? '',
          scope: q['scope'] ?? '',
          state: q['state'] ?? '',
          codeChallenge: q['code_challenge'] ?? '',
          aud: q['aud'],
        });
      },
      expect: ok((url: string) => {
        const u = new URL(url);
        expect(u.pathname).toBe(R('8.0.0/70').path);
        expect(Object.fromEntries(u.searchParams)).toEqual(R('8.0.0/70').query);
      }),
    },
    {
      files: ['8.0.0/70', '8.0.0/71', '8.0.0/72', '8.0.0/73', '8.0.0/74', '8.0.0/75', '8.0.0/76'],
      operation: 'browser',
      profile: V,
      title:
        'smartAuthorize (./testing) plays the browser through the recorded pages: login, patient picker, approval, code',
      steps: ['8.0.0/70', '8.0.0/71', '8.0.0/72', '8.0.0/73', '8.0.0/74', '8.0.0/75', '8.0.0/76'].map((f) => rec(f)),
      run: () =>
        smartAuthorize(recordedUrl('8.0.0/70'), {
          username: form('8.0.0/72')['username'] ?? '',
          password: 'the-password',
          patient: { uuid: form('8.0.0/74')['patient_id'] ?? '' },
        }),
      expect: ok((r: SmartAuthorizeResult) => {
        // Every box left checked submits exactly the recorded approval (file 76's scope[...] fields).
        expectRedirect(r, '8.0.0/76');
        expect(r.steps).toHaveLength(7);
      }),
    },
    {
      files: ['8.0.0/77'],
      operation: 'oauth.exchangeCode',
      profile: V,
      title: 'code + PKCE for a public app: the launch context (patient, banner, style)',
      steps: [rec('8.0.0/77')],
      run: () =>
        oauth('8.0.0/77', form('8.0.0/77')['client_id']).exchangeCode({
          code: 'code-from-redirect',
          redirectUri: form('8.0.0/77')['redirect_uri'] ?? '',
          codeVerifier: 'verifier',
        }),
      expect: ok((t: { patient: string; needPatientBanner: boolean; smartStyleUrl: string; refreshToken: string }) => {
        expect(t.patient).toBe(P2);
        expect(t.needPatientBanner).toBe(true);
        expect(t.smartStyleUrl).toMatch(/smart-style$/);
        expect(t.refreshToken).toBeTruthy();
      }),
    },
    {
      files: ['8.0.0/78'],
      operation: 'fhir.search',
      profile: V,
      title: 'a patient token searches the launch patient’s vital signs',
      steps: [rec('8.0.0/78')],
      run: () => emr('8.0.0/78', V).fhir.search('Observation', { patient: P2, category: 'vital-signs' }),
      expect: ok((b: { total: number }) => expect(b.total).toBe(15)),
    },
    {
      files: ['8.0.0/79'],
      operation: 'oauth.authorizationUrl',
      profile: V,
      title: 'an authorize URL without PKCE is refused (OpenEMR answers 400 to public apps; SMART 2 wants PKCE always)',
      steps: [],
      run: async () => {
        const q = R('8.0.0/79').query;
        return oauth('8.0.0/79', q['client_id']).authorizationUrl({
          redirectUri: q['redirect_uri'] ?? '',
          scope: q['scope'] ?? '',
          state: q['state'] ?? '',
          aud: q['aud'],
        } as never);
      },
      expect: refused(ValidationError, validation('codeChallenge')),
    },
    // SMART EHR launch
    {
      files: ['8.0.0/80'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'a confidential EHR-launch app with initiate_login_uri',
      steps: [rec('8.0.0/80')],
      run: () => oauth('8.0.0/80', undefined).registerClient(json('8.0.0/80') as never),
      expect: ok((r: { client_id: string }) => expect(r.client_id).toBe(body('8.0.0/80')['client_id'])),
    },
    // The user's login to OpenEMR's own UI and its launcher are not the app's to play (the emulator parity suite
    // holds the emulator to them, and the dashboard's Chromium e2e plays them).
    ...['8.0.0/81', '8.0.0/82'].map((f): ReplayCase => ({
      files: [f],
      operation: 'browser',
      profile: V,
      title: `${R(f).operation}: a step of OpenEMR's UI, before the app is launched`,
      steps: [],
    })),
    {
      files: ['8.0.0/83', '8.0.0/84', '8.0.0/85'],
      operation: 'browser',
      profile: V,
      title: 'smartAuthorize plays the EHR launch: login (no patient picker: the launch has one), approval, code',
      steps: [
        rec('8.0.0/83'),
        derivedPage('GET', '/oauth2/default/provider/login', '8.0.0/71', 'the login page, not saved again (file 71)'),
        rec('8.0.0/84'),
        derivedPage(
          'POST',
          '/oauth2/default/scope-authorize-confirm',
          '8.0.0/75',
          'the approval page, "not saved again, identical form to the standalone one" (file 85)',
        ),
        rec('8.0.0/85'),
      ],
      run: () =>
        smartAuthorize(recordedUrl('8.0.0/83'), {
          username: form('8.0.0/84')['username'] ?? '',
          password: 'the-password',
          // The standalone page offers launch/patient; the EHR launch's offers what the app asked (file 83).
          approve: () => (R('8.0.0/83').query['scope'] ?? '').split(' '),
        }),
      expect: ok((r: SmartAuthorizeResult) => expectRedirect(r, '8.0.0/85')),
    },
    {
      files: ['8.0.0/87', '8.0.0/88'],
      operation: 'browser',
      profile: V,
      title: 'smartAuthorize submits the auto-submit page of a trusted EHR-launch app (no login, no approval)',
      steps: [rec('8.0.0/87'), rec('8.0.0/88')],
      run: () => smartAuthorize(recordedUrl('8.0.0/87'), { username: 'admin', password: 'unused' }),
      expect: ok((r: SmartAuthorizeResult) => {
        expectRedirect(r, '8.0.0/88');
        expect(r.steps).toEqual([`GET ${R('8.0.0/87').path}`, `POST ${R('8.0.0/88').path}`]);
      }),
    },
    {
      files: ['8.0.0/83'],
      operation: 'oauth.authorizationUrl',
      profile: V,
      title: 'the EHR-launch authorize URL carries launch and aud (aud is mandatory with launch)',
      steps: [],
      run: async () => {
        const q = R('8.0.0/83').query;
        return oauth('8.0.0/83', q['client_id']).authorizationUrl({
          redirectUri: q['redirect_uri'] ?? '',
          scope: q['scope'] ?? '',
          state: q['state'] ?? '',
          codeChallenge: q['code_challenge'] ?? '',
          aud: q['aud'],
          launch: 'opaque-launch-token',
        });
      },
      expect: ok((url: string) => {
        const got = Object.fromEntries(new URL(url).searchParams);
        expect({ ...got, launch: R('8.0.0/83').query['launch'] }).toEqual(R('8.0.0/83').query);
      }),
    },
    {
      files: ['8.0.0/83'],
      operation: 'oauth.authorizationUrl',
      profile: V,
      title: 'launch without aud is refused',
      steps: [],
      run: async () =>
        oauth('8.0.0/83', 'x').authorizationUrl({
          redirectUri: 'http://127.0.0.1:18399/callback',
          scope: 'launch',
          state: 's',
          codeChallenge: 'c',
          launch: 'l',
        }),
      expect: refused(ValidationError, validation('aud')),
    },
    {
      files: ['8.0.0/86'],
      operation: 'oauth.exchangeCode',
      profile: V,
      title: 'code exchange for the confidential EHR app: patient and intent',
      steps: [rec('8.0.0/86')],
      run: () =>
        oauth('8.0.0/86', form('8.0.0/86')['client_id'], 'secret').exchangeCode({
          code: 'code',
          redirectUri: form('8.0.0/86')['redirect_uri'] ?? '',
          codeVerifier: 'verifier',
        }),
      expect: ok((t: { patient: string; intent: string; needPatientBanner: boolean }) =>
        expect([t.patient, t.intent, t.needPatientBanner]).toEqual([P2, 'patient.demographics.dialog', false]),
      ),
    },
    // SMART Backend Services
    {
      files: ['8.0.0/89'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'system scopes while rest_system_scopes_api is off: invalid_scope',
      steps: [rec('8.0.0/89')],
      run: () => oauth('8.0.0/89', undefined).registerClient(json('8.0.0/89') as never),
      expect: fails(OpenEmrAuthError, (e) => expect([e.status, e.error]).toEqual([400, 'invalid_scope'])),
    },
    {
      files: ['8.0.0/90'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'a backend client with an inline JWKS (redirect_uris still required)',
      steps: [rec('8.0.0/90')],
      run: () => oauth('8.0.0/90', undefined).registerClient(json('8.0.0/90') as never),
      expect: ok((r: { client_id: string }) => expect(r.client_id).toBe(BACKEND_CLIENT)),
    },
    {
      files: ['8.0.0/91'],
      operation: 'oauth.clientCredentials',
      profile: V,
      title: 'a client not yet enabled: 401 invalid_client',
      steps: [rec('8.0.0/91')],
      run: () => oauth('8.0.0/91', BACKEND_CLIENT).clientCredentials({ ...backendKey(), scope: BACKEND_SCOPE }),
      expect: fails(OpenEmrAuthError, (e) => expect([e.status, e.error]).toEqual([401, 'invalid_client'])),
    },
    {
      files: ['8.0.0/92'],
      operation: 'oauth.clientCredentials',
      profile: V,
      title: 'client credentials with an RS384 assertion: iss = sub = client, aud = token endpoint; 300 s, no refresh',
      steps: [rec('8.0.0/92')],
      run: async () => {
        const keys = new BackendServicesKeys([{ ...(await BackendServicesKeys.generateKey('cdss-bs-0e6e7b7f')) }]);
        return createBackendServicesTokenProvider({
          oauth: oauth('8.0.0/92', BACKEND_CLIENT),
          keys,
          scope: BACKEND_SCOPE,
        }).fetchToken();
      },
      expect: (o, sent) => {
        ok((t: { accessToken: string }) => expect(t.accessToken).toBeTruthy())(o);
        const claims = assertionClaims(sent[0]!);
        expect([claims['iss'], claims['sub'], claims['aud']]).toEqual([
          BACKEND_CLIENT,
          BACKEND_CLIENT,
          'http://127.0.0.1:18301/oauth2/default/token',
        ]);
        const header = JSON.parse(
          Buffer.from(
            ((sent[0]!.body as { __form: Record<string, string> }).__form['client_assertion'] ?? '').split('.')[0] ??
              '',
            'base64url',
          ).toString('utf8'),
        ) as Record<string, unknown>;
        expect([header['alg'], header['kid']]).toEqual(['RS384', 'cdss-bs-0e6e7b7f']);
      },
    },
    {
      files: ['8.0.0/92'],
      operation: 'oauth.clientCredentials',
      profile: V,
      title: 'the token answer lasts 300 s and has no refresh token',
      steps: [rec('8.0.0/92')],
      run: () =>
        oauth('8.0.0/92', BACKEND_CLIENT, undefined, {
          now: () => 1_000_000,
          sleep: () => Promise.resolve(),
        }).clientCredentials({ ...backendKey(), scope: BACKEND_SCOPE }),
      expect: ok((t: { expiresAt: number; refreshToken?: string }) =>
        expect([t.expiresAt, t.refreshToken]).toEqual([1_300_000, undefined]),
      ),
    },
    {
      files: ['8.0.0/93'],
      operation: 'fhir.search',
      profile: V,
      title: 'a system token reads FHIR Patients',
      steps: [rec('8.0.0/93')],
      run: () => emr('8.0.0/93', V).fhir.search('Patient'),
      expect: ok((b: { total: number }) => expect(b.total).toBe(4)),
    },
    {
      files: ['8.0.0/94'],
      operation: 'oauth.clientCredentials',
      profile: V,
      title: 'aud other than the token endpoint: 400 invalid_client',
      steps: [rec('8.0.0/94')],
      run: () =>
        oauth('8.0.0/94', BACKEND_CLIENT).clientCredentials({
          ...backendKey(),
          scope: BACKEND_SCOPE,
          audience: 'http://127.0.0.1:18301/apis/default/fhir',
        }),
      expect: (o, sent) => {
        fails(OpenEmrAuthError, (e: OpenEmrAuthError) => expect([e.status, e.error]).toEqual([400, 'invalid_client']))(
          o,
        );
        expect(assertionClaims(sent[0]!)['aud']).toBe('http://127.0.0.1:18301/apis/default/fhir');
      },
    },
    {
      files: ['8.0.0/95'],
      operation: 'oauth.clientCredentials',
      profile: V,
      title: 'an expired assertion (a client clock 6 minutes behind): 400 invalid_client',
      steps: [rec('8.0.0/95')],
      run: () =>
        oauth('8.0.0/95', BACKEND_CLIENT, undefined, {
          now: () => 1796582900_000,
          sleep: () => Promise.resolve(),
        }).clientCredentials({ ...backendKey(), scope: BACKEND_SCOPE }),
      expect: (o, sent) => {
        fails(OpenEmrAuthError, (e: OpenEmrAuthError) => expect([e.status, e.error]).toEqual([400, 'invalid_client']))(
          o,
        );
        expect(assertionClaims(sent[0]!)['exp']).toBeLessThan(1796583327);
      },
    },
    {
      files: ['8.0.0/96'],
      operation: 'oauth.clientCredentials',
      profile: V,
      title: 'a reused jti is refused (400); the client never reuses one',
      steps: [rec('8.0.0/92'), rec('8.0.0/96')],
      run: async () => {
        const o = oauth('8.0.0/96', BACKEND_CLIENT);
        await o.clientCredentials({ ...backendKey(), scope: BACKEND_SCOPE });
        return o.clientCredentials({ ...backendKey(), scope: BACKEND_SCOPE });
      },
      expect: (o, sent) => {
        fails(OpenEmrAuthError, (e: OpenEmrAuthError) => expect(e.status).toBe(400))(o);
        expect(assertionClaims(sent[0]!)['jti']).not.toBe(assertionClaims(sent[1]!)['jti']);
      },
    },
    // dashboard reads
    {
      files: ['8.0.0/97', '8.0.0/98'],
      operation: 'fhir.search',
      profile: V,
      title: 'searchAll pages Patient with _offset (no next link; total = page size)',
      steps: [
        rec('8.0.0/97', { query: 'superset' }),
        rec('8.0.0/98', { query: 'superset' }),
        derived(
          'GET',
          '/apis/default/fhir/Patient',
          200,
          { ...body<Record<string, unknown>>('8.0.0/98'), total: 0, entry: [] },
          'past the end: the bundle of file 98 with no entries',
          { _count: '2', _offset: '4' },
        ),
      ],
      run: async () => {
        const ids: string[] = [];
        for await (const p of emr('8.0.0/97', V).fhir.searchAll('Patient', {}, { pageSize: 2 })) ids.push(p.id ?? '');
        return ids;
      },
      expect: ok((ids: string[]) => expect(ids).toHaveLength(4)),
    },
    {
      files: ['8.0.0/99'],
      operation: 'fhir.read',
      profile: V,
      title: 'Patient/$everything does not exist (404): the client does not offer it',
      steps: [],
      run: async () => (emr('8.0.0/99', V).fhir as unknown as Record<string, unknown>)['everything'],
      expect: ok((m: unknown) => expect(m).toBeUndefined()),
    },
    {
      files: ['8.0.0/100'],
      operation: 'fhir.search',
      profile: V,
      title: 'Condition by patient and category',
      steps: [rec('8.0.0/100')],
      run: () => emr('8.0.0/100', V).fhir.search('Condition', { patient: P2, category: 'problem-list-item' }),
      expect: ok((b: { total: number }) => expect(b.total).toBe(1)),
    },
  ];
}

// ------------------------------------------------------------------------------------ 7.0.1

function cases70(): ReplayCase[] {
  const V: OpenEmrVersion = '7.0';
  const P1 = uuidOf('7.0.1/10');
  const grant = form('7.0.1/04');
  const passwordClient = (id: string): OpenEmrClient =>
    emr(id, V, {
      auth: {
        kind: 'password',
        clientId: grant['client_id'] ?? '',
        clientSecret: 'secret',
        username: 'admin',
        password: 'pass',
        scope: grant['scope'] ?? '',
      },
    });
  const patientRead = derived(
    'GET',
    `/apis/default/api/patient/${P1}`,
    200,
    body('7.0.1/10'),
    'the patient read of file 10',
  );
  return [
    {
      files: ['7.0.1/1'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'SMART v2 scopes are unknown to 7.0.1: invalid_scope',
      steps: [rec('7.0.1/1')],
      run: () => oauth('7.0.1/1', undefined).registerClient(json('7.0.1/1') as never),
      expect: fails(OpenEmrAuthError, (e) => expect(e.error).toBe('invalid_scope')),
    },
    {
      files: ['7.0.1/2'],
      operation: 'oauth.registerClient',
      profile: V,
      title: 'v1 scopes register (JSON labelled text/html)',
      steps: [rec('7.0.1/2')],
      run: () => oauth('7.0.1/2', undefined).registerClient(json('7.0.1/2') as never),
      expect: ok((r: { client_id: string }) => expect(r.client_id).toBe(body('7.0.1/2')['client_id'])),
    },
    {
      files: ['7.0.1/3'],
      operation: 'oauth.discover',
      profile: V,
      title: 'discovery',
      steps: [rec('7.0.1/3')],
      run: () => oauth('7.0.1/3', undefined).discover(),
      expect: ok((d: { issuer: string }) => expect(d.issuer).toBe('http://127.0.0.1:18307/oauth2/default')),
    },
    {
      files: ['7.0.1/4'],
      operation: 'oauth.passwordGrant',
      profile: V,
      title: 'password grant',
      steps: [rec('7.0.1/4')],
      run: () =>
        oauth('7.0.1/4', grant['client_id'], 'secret').passwordGrant({
          username: 'admin',
          password: 'pass',
          scope: grant['scope'] ?? '',
        }),
      expect: ok((t: { scopes: string[] }) => expect(t.scopes).toContain('user/patient.read')),
    },
    {
      files: ['7.0.1/5'],
      operation: 'oauth.passwordGrant',
      profile: V,
      title: 'v2 scopes at the token endpoint: invalid_scope',
      steps: [rec('7.0.1/5')],
      run: () =>
        oauth('7.0.1/5', grant['client_id'], 'secret').passwordGrant({
          username: 'admin',
          password: 'pass',
          scope: form('7.0.1/5')['scope'] ?? '',
        }),
      expect: fails(OpenEmrAuthError, (e) => expect([e.status, e.error]).toEqual([400, 'invalid_scope'])),
    },
    {
      files: ['7.0.1/6'],
      operation: 'oauth.refresh',
      profile: V,
      title: 'refresh',
      steps: [rec('7.0.1/6')],
      run: () => oauth('7.0.1/6', grant['client_id'], 'secret').refresh('rt'),
      expect: ok((t: { refreshToken: string }) => expect(t.refreshToken).toBeTruthy()),
    },
    {
      files: ['7.0.1/7'],
      operation: 'oauth.refresh',
      profile: V,
      title: 'a reused refresh token: 401',
      steps: [rec('7.0.1/7')],
      run: () => oauth('7.0.1/7', grant['client_id'], 'secret').refresh('rt'),
      expect: fails(OpenEmrAuthError, (e) => expect(e.status).toBe(401)),
    },
    {
      files: ['7.0.1/8'],
      operation: 'oauth.introspect',
      profile: V,
      title: 'introspection’s exp is a PHP DateTime: read as epoch seconds',
      steps: [rec('7.0.1/8', { body: 'subset' })],
      run: () => oauth('7.0.1/8', grant['client_id'], 'secret').introspect('t'),
      expect: ok((i: { exp: number }) =>
        expect(i.exp).toBe(Math.floor(Date.parse('2026-12-06T19:47:41.209548Z') / 1000)),
      ),
    },
    {
      files: ['7.0.1/9'],
      operation: 'patients.create',
      profile: V,
      title: 'create: envelope without links',
      steps: [rec('7.0.1/9')],
      run: () => emr('7.0.1/9', V).patients.create(json('7.0.1/9') as never),
      expect: ok((p: { pid: number }) => expect(p.pid).toBe(1)),
    },
    {
      files: ['7.0.1/10'],
      operation: 'patients.get',
      profile: V,
      title: 'get',
      steps: [rec('7.0.1/10')],
      run: () => emr('7.0.1/10', V).patients.get(P1),
      expect: ok((p: { fname: string }) => expect(p.fname).toBe('Zoë')),
    },
    {
      files: ['7.0.1/11'],
      operation: 'patients.update',
      profile: V,
      title: 'partial update',
      steps: [rec('7.0.1/11')],
      run: () => emr('7.0.1/11', V).patients.update(P1, json('7.0.1/11') as never),
      expect: ok((p: { city: string }) => expect(p.city).toBe('Łódź')),
    },
    {
      files: ['7.0.1/12'],
      operation: 'patients.page',
      profile: V,
      title: 'search by last name, without the paging parameters 7.0.1 ignores',
      steps: [rec('7.0.1/12')],
      run: () => emr('7.0.1/12', V).patients.list({ lname: 'Müller-Łukasz' }),
      expect: ok((ps: unknown[]) => expect(ps).toHaveLength(1)),
    },
    {
      files: ['7.0.1/13'],
      operation: 'patients.page',
      profile: V,
      title: '_limit/_offset are ignored (recorded): the client asks for all matches once and pages them itself',
      steps: [rec('7.0.1/13', { query: 'subset' })],
      run: () => emr('7.0.1/13', V).patients.page({}, { limit: 2 }),
      expect: ok((p: { patients: unknown[]; hasMore: boolean }) => {
        const all = body<{ data: unknown[] }>('7.0.1/13').data.length;
        expect(p.patients).toHaveLength(Math.min(2, all));
        expect(p.hasMore).toBe(all > 2);
      }),
    },
    {
      files: ['7.0.1/15'],
      operation: 'patients.get',
      profile: V,
      title: 'unknown uuid: undefined',
      steps: [rec('7.0.1/15')],
      run: () => emr('7.0.1/15', V).patients.get('00000000-0000-4000-8000-000000000000'),
      expect: ok((p: unknown) => expect(p).toBeUndefined()),
    },
    {
      files: ['7.0.1/16'],
      operation: 'patients.update',
      profile: V,
      title: 'update of an unknown uuid: OpenEmrNotFoundError',
      steps: [rec('7.0.1/16')],
      run: () => emr('7.0.1/16', V).patients.update('00000000-0000-4000-8000-000000000000', { city: 'X' }),
      expect: fails(OpenEmrNotFoundError),
    },
    {
      files: ['7.0.1/17'],
      operation: 'patients.create',
      profile: V,
      title: 'a missing fname is refused before sending (OpenEMR answers 400 naming fname)',
      steps: [],
      run: () => emr('7.0.1/17', V).patients.create(json('7.0.1/17') as never),
      expect: refused(ValidationError, validation('fname')),
    },
    {
      files: ['7.0.1/18', '7.0.1/19'],
      operation: 'encounters.create',
      profile: V,
      title: 'create answers only {encounter, uuid}: the client reads the record',
      steps: [
        rec('7.0.1/18'),
        derived(
          'GET',
          `/apis/default/api/patient/${P1}/encounter/${body<{ data: { uuid: string } }>('7.0.1/18').data.uuid}`,
          200,
          { ...body<Record<string, unknown>>('7.0.1/19'), data: body<{ data: unknown[] }>('7.0.1/19').data[0] },
          'the encounter as file 19 lists it',
        ),
      ],
      run: () => emr('7.0.1/18', V).encounters.create(P1, json('7.0.1/18') as never),
      expect: ok((e: { eid: number }) => expect(e.eid).toBe(6)),
    },
    {
      files: ['7.0.1/19'],
      operation: 'encounters.list',
      profile: V,
      title: 'list',
      steps: [rec('7.0.1/19')],
      run: () => emr('7.0.1/19', V).encounters.list(P1),
      expect: ok((es: unknown[]) => expect(es).toHaveLength(1)),
    },
    {
      files: ['7.0.1/20', '7.0.1/21'],
      operation: 'encounters.update',
      profile: V,
      title: 'encounter updates cannot succeed on 7.0.1 (400 without user/group, 500 with): refused before sending',
      steps: [],
      run: () => emr('7.0.1/20', V).encounters.update(P1, R('7.0.1/20').path.split('/').at(-1)!, { reason: 'x' }),
      expect: refused(OpenEmrUnsupportedError),
    },
    {
      files: ['7.0.1/22'],
      operation: 'vitals.create',
      profile: V,
      title: 'create: 201 {vid, fid}',
      steps: [rec('7.0.1/22')],
      run: () => emr('7.0.1/22', V).vitals.create({ pid: 1, eid: 6 }, json('7.0.1/22') as never),
      expect: ok((v: unknown) => expect(v).toEqual({ vid: 7, fid: 2 })),
    },
    {
      files: ['7.0.1/23'],
      operation: 'vitals.list',
      profile: V,
      title: 'list: decimals as strings',
      steps: [rec('7.0.1/23')],
      run: () => emr('7.0.1/23', V).vitals.list({ pid: 1, eid: 6 }),
      expect: ok((vs: { weight: string }[]) => expect(vs[0]?.weight).toBe('150.500000')),
    },
    {
      files: ['7.0.1/24'],
      operation: 'medicalProblems.create',
      profile: V,
      title: 'create: 201',
      steps: [rec('7.0.1/24')],
      run: () => emr('7.0.1/24', V).medicalProblems.create(P1, json('7.0.1/24') as never),
      expect: ok((p: { id: number }) => expect(p.id).toBe(1)),
    },
    {
      files: ['7.0.1/25'],
      operation: 'medicalProblems.list',
      profile: V,
      title: 'the per-patient problem list works on 7.0.1 (diagnosis with the ICD-10 OID)',
      steps: [rec('7.0.1/25')],
      run: () => emr('7.0.1/25', V).medicalProblems.list(P1),
      expect: ok((ps: { diagnosis: string }[]) => expect(ps.map((p) => p.diagnosis)).toEqual(['ICD10:C71.2'])),
    },
    {
      files: ['7.0.1/25'],
      operation: 'medicalProblems.get',
      profile: V,
      title: 'get: found in the patient’s list (the single read answers data [])',
      steps: [rec('7.0.1/25')],
      run: () => emr('7.0.1/25', V).medicalProblems.get(P1, body<{ data: { uuid: string } }>('7.0.1/24').data.uuid),
      expect: ok((p: { title: string }) => expect(p.title).toBe('Glioblastom')),
    },
    {
      files: ['7.0.1/27'],
      operation: 'medicalProblems.list',
      profile: '8.0',
      title: 'a 7.0.1 global list read through the 8.0 workaround (filtered by patient) gives the same rows',
      steps: [rec('7.0.1/27')],
      run: () => emr('7.0.1/27', '8.0').medicalProblems.list(P1),
      expect: ok((ps: unknown[]) => expect(ps).toHaveLength(1)),
    },
    {
      files: ['7.0.1/28'],
      operation: 'allergies.create',
      profile: V,
      title: 'reaction is dropped by 7.0.1: refused before sending',
      steps: [],
      run: () => emr('7.0.1/28', V).allergies.create(P1, json('7.0.1/28') as never),
      expect: refused(ValidationError, validation('reaction')),
    },
    {
      files: ['7.0.1/29', '7.0.1/30'],
      operation: 'allergies.list',
      profile: V,
      title: 'the per-patient allergy list answers [] (file 29): the client filters /api/allergy',
      steps: [rec('7.0.1/30')],
      run: () => emr('7.0.1/30', V).allergies.list(P1),
      expect: (o, sent) => {
        ok((as: { title: string }[]) => expect(as.map((a) => a.title)).toEqual(['Gadolinium']))(o);
        expect(sent.map((r) => r.path)).not.toContain(R('7.0.1/29').path);
      },
    },
    {
      files: ['7.0.1/31'],
      operation: 'medications.list',
      profile: V,
      title: 'none: 404 with no body is []',
      steps: [rec('7.0.1/31')],
      run: () => emr('7.0.1/31', V).medications.list(1),
      expect: ok((ms: unknown[]) => expect(ms).toEqual([])),
    },
    {
      files: ['7.0.1/32', '7.0.1/33'],
      operation: 'medications.create',
      profile: V,
      title: '7.0.1 refuses a begdate with a time (file 32): the client sends the date only',
      steps: [rec('7.0.1/33')],
      run: () =>
        emr('7.0.1/33', V).medications.create(1, {
          title: 'Temozolomid',
          begdate: '2025-03-01 00:00:00',
          diagnosis: 'RXCUI:37776',
        }),
      expect: ok((m: unknown) => expect(m).toEqual({ id: 3 })),
    },
    {
      files: ['7.0.1/35'],
      operation: 'soapNotes.create',
      profile: V,
      title: 'create',
      steps: [rec('7.0.1/35')],
      run: () => emr('7.0.1/35', V).soapNotes.create({ pid: 1, eid: 6 }, json('7.0.1/35') as never),
      expect: ok((n: unknown) => expect(n).toEqual({ sid: 1, fid: 3 })),
    },
    {
      files: ['7.0.1/36'],
      operation: 'soapNotes.list',
      profile: V,
      title: 'the same note listed twice is kept once',
      steps: [rec('7.0.1/36')],
      run: () => emr('7.0.1/36', V).soapNotes.list({ pid: 1, eid: 6 }),
      expect: ok((ns: unknown[]) => expect(ns).toHaveLength(1)),
    },
    {
      files: ['7.0.1/37'],
      operation: 'fhir.search',
      profile: V,
      title: 'Patient by family (no profiles in meta)',
      steps: [rec('7.0.1/37', { body: 'ignore' })],
      run: () => emr('7.0.1/37', V).fhir.search('Patient', { family: 'Müller-Łukasz' }),
      expect: ok((b: { total: number }) => expect(b.total).toBe(1)),
    },
    {
      files: ['7.0.1/38'],
      operation: 'fhir.search',
      profile: V,
      title: 'Patient by name',
      steps: [rec('7.0.1/38')],
      run: () => emr('7.0.1/38', V).fhir.search('Patient', { name: 'Zoë' }),
      expect: ok((b: { total: number }) => expect(b.total).toBe(1)),
    },
    {
      files: ['7.0.1/40'],
      operation: 'fhir.search',
      profile: V,
      title: 'Condition by patient',
      steps: [rec('7.0.1/40')],
      run: () => emr('7.0.1/40', V).fhir.search('Condition', { patient: P1 }),
      expect: ok((b: { total: number }) => expect(b.total).toBe(1)),
    },
    {
      files: ['7.0.1/41', '7.0.1/4', '7.0.1/6'],
      operation: 'session.relogin',
      profile: V,
      title: 'a token revoked by a refresh (401): the transport refreshes once and the read completes',
      steps: [rec('7.0.1/4'), rec('7.0.1/41'), rec('7.0.1/6'), patientRead],
      run: () => passwordClient('7.0.1/41').patients.get(P1),
      expect: ok((p: { pid: number }) => expect(p.pid).toBe(1)),
    },
    {
      files: ['7.0.1/42'],
      operation: 'session.relogin',
      profile: V,
      title: 'a token that cannot be verified, with a bearer the client cannot renew: HttpError 401',
      steps: [rec('7.0.1/42')],
      run: () => emr('7.0.1/42', V).patients.get(P1),
      expect: fails(HttpError, (e) => expect(e.status).toBe(401)),
    },
    {
      files: ['7.0.1/43', '7.0.1/4', '7.0.1/6'],
      operation: 'session.relogin',
      profile: V,
      title: 'an expired token (401 with an empty HTML body): refreshed once, then the read completes',
      steps: [rec('7.0.1/4'), rec('7.0.1/43'), rec('7.0.1/6'), patientRead],
      run: () => passwordClient('7.0.1/43').patients.get(P1),
      expect: ok((p: { pid: number }) => expect(p.pid).toBe(1)),
    },
    {
      files: ['7.0.1/44', '7.0.1/4'],
      operation: 'session.relogin',
      profile: V,
      title: 'logged out (400 "invalid _request"): the password client logs in again once and retries once',
      steps: [rec('7.0.1/4'), rec('7.0.1/44'), rec('7.0.1/4'), patientRead],
      run: () => passwordClient('7.0.1/44').patients.get(P1),
      expect: ok((p: { pid: number }) => expect(p.pid).toBe(1)),
    },
    {
      files: ['7.0.1/45'],
      operation: 'patients.get',
      profile: V,
      title: 'no token: HttpError 401',
      steps: [rec('7.0.1/45')],
      run: () =>
        createOpenEmrClient({ baseUrl: recordedBaseUrl(R('7.0.1/45')), version: V, retry: false }).patients.get(P1),
      expect: fails(HttpError, (e) => expect(e.status).toBe(401)),
    },
  ];
}

/** Every replay case, in recording order per release. */
export function replayCases(): ReplayCase[] {
  return [...cases80(), ...cases70()];
}

/** The release folder a case's first recording comes from. */
export function releaseOf(c: ReplayCase): RecordedExchange['version'] {
  return (c.files[0] ?? '').split('/')[0] as RecordedExchange['version'];
}
