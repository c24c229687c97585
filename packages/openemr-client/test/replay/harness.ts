/**
 * The replay harness: msw answers the client with recorded OpenEMR responses, verbatim, and checks that
 * each request the client sends is the recorded request. Steps are consumed in order; a request that is
 * not the next step's, a step left over, or a body that differs is a failure. Test-only.
 */
import { createHash } from 'node:crypto';
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import { isRedacted, recordedBaseUrl, responseText, type RecordedExchange } from '../recordings.js';

/** A recorded exchange served to the client. */
export interface RecordedStep {
  exchange: RecordedExchange;
  /**
   * How the client's body is held to the recorded one: `exact` (same fields and values, redacted values
   * only present), `subset` (every field the client sends was recorded with that value: for probes sent by
   * hand with extra fields), or `ignore` (checked by the case itself).
   */
  body?: 'exact' | 'subset' | 'ignore' | undefined;
  /**
   * How the client's query is held to the recorded one: `exact`; `superset` (the recorded parameters are all
   * sent, with these values, and the client adds some: paging); or `subset` (every parameter the client sends
   * was recorded with that value, and the client leaves out some the server ignores).
   */
  query?: 'exact' | 'superset' | 'subset' | undefined;
}

/**
 * A response the recordings do not hold, for a follow-up request the client makes (a read-back after an
 * unknown outcome, the next page). Each says why and which recording its shape comes from.
 */
export interface DerivedStep {
  method: string;
  /** Path without query. */
  path: string;
  query?: Record<string, string> | undefined;
  status: number;
  contentType?: string | undefined;
  /** JSON value (serialised) or raw text via `{ __text }`; undefined = empty body. */
  body?: unknown;
  /** Why this response is what OpenEMR answers: the recording its shape is taken from. */
  why: string;
}

/** One step. */
export type Step = RecordedStep | DerivedStep;

/** What the client sent. */
export interface CapturedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON, form fields (`{__form}`), multipart parts (`{__multipart}`), text, or undefined. */
  body: unknown;
}

function isRecorded(step: Step): step is RecordedStep {
  return 'exchange' in step;
}

async function capture(request: Request): Promise<CapturedRequest> {
  const url = new URL(request.url);
  const headers: Record<string, string> = {};
  request.headers.forEach((v, k) => (headers[k.toLowerCase()] = v));
  const type = headers['content-type'] ?? '';
  let body: unknown;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    if (type.startsWith('multipart/form-data')) {
      const form = await request.formData();
      const parts: unknown[] = [];
      for (const [name, value] of form.entries()) {
        if (typeof value === 'string') parts.push({ name, value });
        else {
          const bytes = Buffer.from(await value.arrayBuffer());
          parts.push({
            name,
            filename: value.name,
            contentType: value.type,
            size: bytes.length,
            sha256: createHash('sha256').update(bytes).digest('hex'),
          });
        }
      }
      body = { __multipart: parts };
    } else {
      const text = await request.text();
      if (text === '') body = undefined;
      else if (type.startsWith('application/x-www-form-urlencoded'))
        body = { __form: Object.fromEntries(new URLSearchParams(text)) };
      else {
        try {
          body = JSON.parse(text) as unknown;
        } catch {
          body = { __text: text };
        }
      }
    }
  }
  return { method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers, body };
}

function sameValue(recorded: unknown, sent: unknown): boolean {
  if (isRedacted(recorded)) return sent !== undefined && sent !== null && sent !== '';
  if (Array.isArray(recorded)) {
    return Array.isArray(sent) && recorded.length === sent.length && recorded.every((v, i) => sameValue(v, sent[i]));
  }
  if (recorded !== null && typeof recorded === 'object') {
    if (sent === null || typeof sent !== 'object' || Array.isArray(sent)) return false;
    const r = recorded as Record<string, unknown>;
    const s = sent as Record<string, unknown>;
    const keys = new Set([...Object.keys(r), ...Object.keys(s)]);
    return [...keys].every((k) => sameValue(r[k], s[k]));
  }
  return recorded === sent;
}

function bodyProblems(step: RecordedStep, sent: unknown): string[] {
  const mode = step.body ?? 'exact';
  const recorded = step.exchange.requestBody ?? undefined;
  if (mode === 'ignore') return [];
  if (recorded !== null && typeof recorded === 'object' && '__multipart' in recorded) {
    const want = (recorded as { __multipart: { headers: Record<string, string>; size: number; sha256: string }[] })
      .__multipart;
    const got = ((sent as { __multipart?: Record<string, unknown>[] } | undefined)?.__multipart ?? []) as {
      name?: string;
      filename?: string;
      contentType?: string;
      size?: number;
      sha256?: string;
    }[];
    if (want.length !== got.length) return [`multipart: ${got.length} parts sent, ${want.length} recorded`];
    return want.flatMap((part, i) => {
      const g = got[i] ?? {};
      const disposition = part.headers['content-disposition'] ?? '';
      const name = /name="([^"]*)"/.exec(disposition)?.[1];
      const filename = /filename="([^"]*)"/.exec(disposition)?.[1];
      const problems: string[] = [];
      if (g.name !== name) problems.push(`multipart part ${i}: field ${String(g.name)}, recorded ${String(name)}`);
      if (g.contentType !== part.headers['content-type'])
        problems.push(`multipart part ${i}: type ${String(g.contentType)}, recorded ${part.headers['content-type']}`);
      if (filename !== undefined && g.filename !== filename)
        problems.push(`multipart part ${i}: filename ${String(g.filename)}, recorded ${filename}`);
      if (g.sha256 !== part.sha256) problems.push(`multipart part ${i}: bytes differ from the recorded file`);
      return problems;
    });
  }
  if (mode === 'subset') {
    const form = (v: unknown): Record<string, unknown> =>
      v !== null && typeof v === 'object' && '__form' in v
        ? (v as { __form: Record<string, unknown> }).__form
        : ((v ?? {}) as Record<string, unknown>);
    const r = form(recorded);
    const s = form(sent);
    return Object.keys(s)
      .filter((k) => !sameValue(r[k], s[k]))
      .map((k) => `body field ${k}: sent ${JSON.stringify(s[k])}, recorded ${JSON.stringify(r[k])}`);
  }
  return sameValue(recorded, sent)
    ? []
    : [`body: sent ${JSON.stringify(sent)?.slice(0, 400)}, recorded ${JSON.stringify(recorded)?.slice(0, 400)}`];
}

function sameQuery(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k] || (isRedacted(b[k]) && a[k] !== undefined));
}

/** An msw server answering from recordings, one scenario at a time. */
export class ReplayServer {
  private readonly server: ReturnType<typeof setupServer>;
  private steps: Step[] = [];
  /** Problems found so far in this scenario. */
  problems: string[] = [];
  /** Every request the client sent in this scenario, in order. */
  sent: CapturedRequest[] = [];

  constructor() {
    this.server = setupServer();
  }

  /** Starts intercepting (call in `beforeAll`). */
  listen(): void {
    this.server.listen({ onUnhandledFrame: 'error' });
  }

  /** Stops intercepting (call in `afterAll`). */
  close(): void {
    this.server.close();
  }

  /**
   * Starts a scenario: the client's requests must be these steps, in this order.
   * @param steps - recorded and derived steps
   */
  serve(steps: Step[]): void {
    this.steps = [...steps];
    this.problems = [];
    this.sent = [];
    this.server.resetHandlers(
      http.all('*', async ({ request }) => {
        const req = await capture(request);
        this.sent.push(req);
        const step = this.steps.shift();
        if (step === undefined) {
          this.problems.push(`unexpected request ${req.method} ${req.path} (no step left)`);
          return HttpResponse.json({ error: 'replay: no recorded exchange for this request' }, { status: 599 });
        }
        const want = isRecorded(step)
          ? { method: step.exchange.method, path: step.exchange.path, query: step.exchange.query }
          : { method: step.method, path: step.path, query: step.query ?? {} };
        const where = isRecorded(step) ? step.exchange.id : `derived ${step.method} ${step.path}`;
        if (req.method !== want.method || req.path !== want.path)
          this.problems.push(`${where}: client sent ${req.method} ${req.path}, expected ${want.method} ${want.path}`);
        else if (
          isRecorded(step) && step.query === 'superset'
            ? !Object.entries(want.query).every(([k, v]) => req.query[k] === v)
            : isRecorded(step) && step.query === 'subset'
              ? !Object.entries(req.query).every(([k, v]) => want.query[k] === v)
              : !sameQuery(req.query, want.query)
        )
          this.problems.push(`${where}: query ${JSON.stringify(req.query)}, expected ${JSON.stringify(want.query)}`);
        if (isRecorded(step)) {
          for (const p of bodyProblems(step, req.body)) this.problems.push(`${where}: ${p}`);
          const headers: Record<string, string> = {};
          for (const k of ['content-type', 'location', 'content-disposition', 'set-cookie']) {
            const v = step.exchange.responseHeaders[k];
            if (v !== undefined) headers[k] = v;
          }
          return new HttpResponse(responseText(step.exchange) ?? null, { status: step.exchange.status, headers });
        }
        const text =
          step.body === undefined
            ? null
            : typeof step.body === 'object' && step.body !== null && '__text' in step.body
              ? String((step.body as { __text: unknown }).__text)
              : JSON.stringify(step.body);
        return new HttpResponse(text, {
          status: step.status,
          headers: { 'content-type': step.contentType ?? 'application/json' },
        });
      }),
    );
  }

  /** Problems of the scenario, including steps the client never asked for. */
  finish(): string[] {
    const left = this.steps.map((s) =>
      isRecorded(s) ? `${s.exchange.id} was never requested` : `derived ${s.method} ${s.path} was never requested`,
    );
    return [...this.problems, ...left];
  }
}

/** The server root of a recorded exchange (where the client under test points). */
export { recordedBaseUrl };
