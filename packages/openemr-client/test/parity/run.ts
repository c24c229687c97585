/**
 * Replays the recorded requests against the OpenEMR emulator, in recording order, and holds each answer to
 * the recorded one. The emulator starts from the world the recorded server had before the recording (the
 * rows it already held, its sequences), and the steps the recordings skipped (numbered gaps) are redone
 * by hand. Secrets and generated values the recordings redact are the emulator's own: the run keeps the
 * tokens, cookies, CSRF tokens, codes and client ids the emulator hands out and sends them where the
 * recorded request had the redacted ones. Test-only.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import {
  OpenEmrEngine,
  SEED_ADMIN,
  SEED_CLIENT,
  type OpenEmrEmulatorResponse as EmulatorResponse,
} from '@cdss/sandbox';
import { SignJWT } from 'jose';
import { isRedacted, recordedBaseUrl, type RecordedExchange } from '../recordings.js';
import { forms, mediaType, normalizedLocation, shapeDifferences } from './compare.js';

/** The request the run sends. */
export interface ParityRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: string | Buffer | undefined;
}

/** What one exchange needs beyond the generic handling. */
export interface ParityHooks {
  /** Redo what the recording skipped, or do what an administrator did, before this request. */
  before?: (run: ParityRun) => void | Promise<void>;
  /** Adjust the request (tokens, redacted fields). */
  request?: (run: ParityRun, req: ParityRequest) => void | Promise<void>;
  /** Learn from the answer (beyond tokens, cookies and ids). */
  after?: (run: ParityRun, res: EmulatorResponse) => void;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

function text(body: string | Buffer | undefined): string {
  return body === undefined ? '' : body.toString();
}

/** One replay of a release's recordings against a fresh emulator. */
export class ParityRun {
  readonly engine: OpenEmrEngine;
  /** Recorded → emulator identifiers (uuids, client ids). */
  readonly ids = new Map<string, string>();
  /** Emulator clients by recorded client id: their secrets. */
  readonly secrets = new Map<string, string>();
  readonly cookies = new Map<string, string>();
  /** Tokens by the recording that obtained them. */
  readonly tokens = new Map<string, { access?: string; refresh?: string; id?: string }>();
  /** A full-scope clinician token of the seeded client (for API requests whose recorded token is redacted). */
  apiToken = '';
  csrf = '';
  code = '';
  launch = '';
  readonly pkce = { verifier: randomBytes(48).toString('base64url'), challenge: '' };
  readonly backendKey: { privateKey: KeyObject; jwk: Record<string, unknown> };
  assertions = new Map<string, string>();

  constructor(version: '7.0' | '8.0') {
    this.engine = new OpenEmrEngine({ version, seed: false });
    this.pkce.challenge = createHash('sha256').update(this.pkce.verifier).digest('base64url');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.backendKey = {
      privateKey,
      jwk: { ...publicKey.export({ format: 'jwk' }), kid: 'cdss-bs-0e6e7b7f', alg: 'RS384', use: 'sig' },
    };
  }

  /** Maps recorded identifiers in a string to the emulator's. */
  map(value: string): string {
    let out = value;
    for (const [from, to] of this.ids) out = out.split(from).join(to);
    return out;
  }

  /** The emulator's uuid of a recorded one. */
  id(recorded: string): string {
    return this.ids.get(recorded) ?? recorded;
  }

  /**
   * Sends a request straight to the emulator's core.
   * @param origin - the site address the request reached
   */
  async send(origin: string, req: ParityRequest): Promise<EmulatorResponse> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const headers = { ...req.headers };
    if (cookie !== '' && headers['cookie'] !== undefined) headers['cookie'] = cookie;
    const query = req.query.toString();
    const res = await this.engine.handle({
      method: req.method,
      url: `${req.path}${query === '' ? '' : `?${query}`}`,
      headers,
      body: req.body,
      origin,
    });
    for (const c of (res.headers['set-cookie'] ?? '').split(/,\s*(?=[A-Za-z]+=)/)) {
      const m = /^([^=;]+)=([^;]*)/.exec(c.trim());
      if (m) this.cookies.set(m[1] ?? '', m[2] ?? '');
    }
    const csrf = /name="csrf_token(?:_form)?" value="([^"]+)"/.exec(text(res.body))?.[1];
    if (csrf !== undefined) this.csrf = csrf;
    const location = res.headers['location'];
    if (location !== undefined) {
      const url = new URL(location, origin);
      this.code = url.searchParams.get('code') ?? this.code;
      this.launch = url.searchParams.get('launch') ?? this.launch;
    }
    return res;
  }

  /** A password-grant token of the seeded client, with every scope it has. */
  async seedToken(origin: string, version: '7.0' | '8.0'): Promise<string> {
    const client = this.engine.store.tables.clients.find((c) => c.client_id === SEED_CLIENT.clientId);
    const res = await this.send(origin, {
      method: 'POST',
      path: '/oauth2/default/token',
      query: new URLSearchParams(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: SEED_CLIENT.clientId,
        client_secret: SEED_CLIENT.clientSecret,
        user_role: 'users',
        username: SEED_ADMIN.username,
        password: SEED_ADMIN.password,
        scope: (client?.scope ?? []).join(' '),
      }).toString(),
    });
    const token = (JSON.parse(text(res.body)) as { access_token?: string }).access_token;
    if (res.status !== 200 || token === undefined)
      throw new Error(`seed token (${version}): ${res.status} ${text(res.body)}`);
    return token;
  }

  /** A client assertion for the backend client, signed with the run's key. */
  async assertion(
    clientId: string,
    claims: { aud: string; exp?: number; iat?: number; jti?: string },
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: claims.jti ?? randomUUID() })
      .setProtectedHeader({ alg: 'RS384', typ: 'JWT', kid: 'cdss-bs-0e6e7b7f' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(claims.aud)
      .setIssuedAt(claims.iat ?? now)
      .setExpirationTime(claims.exp ?? now + 300)
      .sign(this.backendKey.privateKey);
  }

  /** Learns identifiers from an answer: where the recording has a uuid, the emulator's uuid at the same place. */
  learn(recorded: unknown, actual: unknown): void {
    if (typeof recorded === 'string' && typeof actual === 'string') {
      const r = recorded.match(UUID) ?? [];
      const a = actual.match(UUID) ?? [];
      if (r.length === a.length) r.forEach((u, i) => this.ids.has(u) || this.ids.set(u, a[i] ?? u));
      return;
    }
    if (Array.isArray(recorded) && Array.isArray(actual)) {
      recorded.forEach((r, i) => this.learn(r, actual[i]));
      return;
    }
    if (recorded !== null && typeof recorded === 'object' && actual !== null && typeof actual === 'object') {
      for (const [k, v] of Object.entries(recorded)) this.learn(v, (actual as Record<string, unknown>)[k]);
    }
  }

  /**
   * The request as recorded, with the run's identifiers, tokens and secrets where the recording has the
   * server's or redacted ones.
   */
  build(ex: RecordedExchange): ParityRequest {
    const headers: Record<string, string> = {};
    for (const k of ['accept', 'content-type', 'cookie']) {
      const v = ex.requestHeaders[k];
      if (v !== undefined) headers[k] = v;
    }
    if ((ex.requestHeaders['authorization'] ?? '').startsWith('Bearer'))
      headers['authorization'] = `Bearer ${this.apiToken}`;
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(ex.query)) query.set(k, this.map(v));
    let body: string | Buffer | undefined;
    const rb = ex.requestBody as Record<string, unknown> | null;
    if (rb !== null && typeof rb === 'object' && '__form' in rb) {
      const f = rb['__form'] as Record<string, string>;
      const out = new URLSearchParams();
      for (const [k, v] of Object.entries(f)) {
        let value = this.map(v);
        if (isRedacted(v)) {
          if (k === 'client_secret') value = this.secrets.get(f['client_id'] ?? '') ?? '';
          else if (k === 'password' || k === 'clearPass') value = SEED_ADMIN.password;
          else if (k === 'code') value = this.code;
          else if (k === 'code_verifier') value = this.pkce.verifier;
          else if (k.startsWith('csrf_token')) value = this.csrf;
        }
        if (k === 'client_id') value = this.id(v);
        out.append(k, value);
      }
      body = out.toString();
    } else if (rb !== null && typeof rb === 'object' && '__multipart' in rb) {
      const boundary = `----formdata-parity-${randomBytes(6).toString('hex')}`;
      const parts = (rb['__multipart'] as { headers: Record<string, string>; text: string }[]).map((p) =>
        Buffer.concat([
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: ${p.headers['content-disposition'] ?? ''}\r\nContent-Type: ${p.headers['content-type'] ?? ''}\r\n\r\n`,
          ),
          Buffer.from(p.text, 'latin1'),
          Buffer.from('\r\n'),
        ]),
      );
      body = Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]);
      headers['content-type'] = `multipart/form-data; boundary=${boundary}`;
    } else if (rb !== null && rb !== undefined) {
      body = this.map(JSON.stringify(rb));
    }
    return { method: ex.method, path: this.map(ex.path), query, headers, body };
  }

  /**
   * Replays one exchange and compares.
   * @returns the differences ([] when the emulator answered as recorded)
   */
  async replay(ex: RecordedExchange, hooks: ParityHooks = {}): Promise<string[]> {
    const origin = recordedBaseUrl(ex);
    await hooks.before?.(this);
    const req = this.build(ex);
    await hooks.request?.(this, req);
    const res = await this.send(origin, req);
    const problems = this.compare(ex, res);
    this.remember(ex, res);
    hooks.after?.(this, res);
    return problems;
  }

  private remember(ex: RecordedExchange, res: EmulatorResponse): void {
    const body = text(res.body);
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch {
      data = undefined;
    }
    if (data !== undefined) this.learn(ex.responseBody, data);
    const record = data as Record<string, unknown> | undefined;
    if (record && typeof record === 'object' && !Array.isArray(record)) {
      if (
        typeof record['client_secret'] === 'string' &&
        typeof (ex.responseBody as Record<string, unknown>)['client_id'] === 'string'
      ) {
        const recorded = (ex.responseBody as Record<string, string>)['client_id'] ?? '';
        this.ids.set(recorded, String(record['client_id']));
        this.secrets.set(recorded, String(record['client_secret'] ?? ''));
      }
      if (typeof record['access_token'] === 'string') {
        this.tokens.set(ex.id, {
          access: record['access_token'],
          refresh: typeof record['refresh_token'] === 'string' ? record['refresh_token'] : undefined,
          id: typeof record['id_token'] === 'string' ? record['id_token'] : undefined,
        });
      }
    }
  }

  private compare(ex: RecordedExchange, res: EmulatorResponse): string[] {
    const problems: string[] = [];
    if (res.status !== ex.status)
      problems.push(`status ${res.status}, recorded ${ex.status}: ${text(res.body).slice(0, 300)}`);
    const recordedType = mediaType(ex.responseHeaders['content-type']);
    const actualType = mediaType(res.headers['content-type']);
    if (recordedType !== actualType) problems.push(`content-type ${actualType || '(none)'}, recorded ${recordedType}`);
    const recLocation = normalizedLocation(ex.responseHeaders['location']);
    const location = normalizedLocation(res.headers['location']);
    if (recLocation !== undefined && recLocation !== location)
      problems.push(`location ${String(location)}, recorded ${recLocation}`);
    const recCookies =
      (ex.responseHeaders['set-cookie'] ?? '').match(/(?:^|, )([A-Za-z]+)=/g)?.map((c) => c.replace(/^, /, '')) ?? [];
    for (const c of recCookies) if (!(res.headers['set-cookie'] ?? '').includes(c)) problems.push(`no cookie ${c}`);
    const recorded = ex.responseBody;
    if (recorded === null) {
      if (text(res.body) !== '') problems.push(`a body where none was recorded: ${text(res.body).slice(0, 120)}`);
      return problems;
    }
    if (typeof recorded === 'object' && !Array.isArray(recorded) && '__text' in recorded) {
      const page = String((recorded as { __text: unknown }).__text);
      if (recordedType.includes('html') && /<form/i.test(page)) {
        const want = forms(page);
        const got = forms(text(res.body));
        want.forEach((f, i) => {
          const g = got[i];
          if (!g) problems.push(`form ${i} (${f.action}) missing`);
          else {
            if (g.action !== f.action || g.method !== f.method)
              problems.push(`form ${i}: ${g.method} ${g.action}, recorded ${f.method} ${f.action}`);
            const missing = [...f.fields].filter((n) => !g.fields.has(n));
            if (missing.length > 0) problems.push(`form ${i}: missing fields ${missing.join(', ')}`);
          }
        });
      } else if (recordedType === 'application/pdf' || (res.body !== undefined && Buffer.isBuffer(res.body))) {
        if (
          !Buffer.from(page, 'latin1').equals(
            Buffer.isBuffer(res.body) ? res.body : Buffer.from(text(res.body), 'latin1'),
          )
        )
          problems.push('file bytes differ');
      }
      return problems;
    }
    let actual: unknown;
    try {
      actual = JSON.parse(text(res.body));
    } catch {
      problems.push(`not JSON: ${text(res.body).slice(0, 200)}`);
      return problems;
    }
    return [...problems, ...shapeDifferences(recorded, actual)];
  }
}
