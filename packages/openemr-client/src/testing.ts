/**
 * `@cdss/openemr-client/testing`: msw handlers that answer for an OpenEMR server, backed by the OpenEMR
 * emulator's logic, so integrators can test code that uses the client without running a server.
 *
 * The emulator lives in `@cdss/sandbox`, which is a heavy package (Express, the Medplum FHIR server, a DICOM
 * store) that this library should not pull into its users' installs. So the handlers take the emulator as
 * an injected request handler: anything with `handle(request) => response` (structurally, the sandbox's
 * `OpenEmrEngine`). msw is an optional peer dependency, needed only by this entry.
 *
 * @example
 * ```ts
 * import { setupServer } from 'msw/node';
 * import { OpenEmrEngine } from '@cdss/sandbox';
 * import { createOpenEmrHandlers } from '@cdss/openemr-client/testing';
 *
 * const server = setupServer(...createOpenEmrHandlers({ baseUrl: 'https://emr.test', emulator: new OpenEmrEngine({ version: '8' }) }));
 * server.listen();
 * ```
 * @packageDocumentation
 */
import { http, type HttpHandler } from 'msw';

/** A request as the emulator reads it. */
export interface OpenEmrEmulatorRequestLike {
  method: string;
  /** Path and query. */
  url: string;
  headers: Record<string, string | undefined>;
  body?: string | undefined;
  /** `scheme://host[:port]` of the server the client called. */
  origin: string;
}

/** An emulator answer. */
export interface OpenEmrEmulatorResponseLike {
  status: number;
  headers: Record<string, string>;
  body?: string | undefined;
}

/** What the handlers need from the emulator: `OpenEmrEngine` from `@cdss/sandbox` fits. */
export interface OpenEmrRequestHandler {
  handle(request: OpenEmrEmulatorRequestLike): OpenEmrEmulatorResponseLike | Promise<OpenEmrEmulatorResponseLike>;
}

/** Options of {@link createOpenEmrHandlers}. */
export interface OpenEmrHandlersOptions {
  /** The base URL the client under test uses, e.g. `https://emr.test`. */
  baseUrl: string;
  /** The emulator that answers. */
  emulator: OpenEmrRequestHandler;
  /** Called with every request the handlers answered (method and path only: no bodies, no tokens). */
  onRequest?: ((call: { method: string; path: string; status: number }) => void) | undefined;
}

/**
 * msw handlers for `<baseUrl>/oauth2/*` and `<baseUrl>/apis/*`.
 * @param options - base URL and emulator
 * @returns the handlers, for `setupServer(...)`
 */
export function createOpenEmrHandlers(options: OpenEmrHandlersOptions): HttpHandler[] {
  const base = new URL(options.baseUrl);
  const root = options.baseUrl.replace(/\/+$/, '');
  const answer = async ({ request }: { request: Request }): Promise<Response> => {
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key.toLowerCase()] = value;
    });
    const text = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.text();
    const prefix = base.pathname.replace(/\/+$/, '');
    const out = await options.emulator.handle({
      method: request.method.toUpperCase(),
      url: `${url.pathname.slice(prefix.length)}${url.search}`,
      headers,
      body: text === '' ? undefined : text,
      origin: root,
    });
    options.onRequest?.({ method: request.method, path: url.pathname, status: out.status });
    return new Response(out.body ?? null, { status: out.status, headers: out.headers });
  };
  return [http.all(`${root}/oauth2/*`, answer), http.all(`${root}/apis/*`, answer)];
}
