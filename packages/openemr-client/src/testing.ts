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
  /** Text, or bytes for multipart uploads. */
  body?: string | Buffer | undefined;
  /** `scheme://host[:port]` of the server the client called. */
  origin: string;
}

/** An emulator answer. */
export interface OpenEmrEmulatorResponseLike {
  status: number;
  headers: Record<string, string>;
  /** Text, or bytes for files. */
  body?: string | Uint8Array | undefined;
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
    const bytes =
      request.method === 'GET' || request.method === 'HEAD' ? undefined : Buffer.from(await request.arrayBuffer());
    const multipart = (headers['content-type'] ?? '').startsWith('multipart/');
    const prefix = base.pathname.replace(/\/+$/, '');
    const out = await options.emulator.handle({
      method: request.method.toUpperCase(),
      url: `${url.pathname.slice(prefix.length)}${url.search}`,
      headers,
      body: bytes === undefined || bytes.length === 0 ? undefined : multipart ? bytes : bytes.toString('utf8'),
      origin: root,
    });
    options.onRequest?.({ method: request.method, path: url.pathname, status: out.status });
    return new Response(out.body === undefined ? null : (out.body as ConstructorParameters<typeof Response>[0]), {
      status: out.status,
      headers: out.headers,
    });
  };
  return [http.all(`${root}/oauth2/*`, answer), http.all(`${root}/apis/*`, answer)];
}

/** What {@link smartAuthorize} does on OpenEMR's pages. */
export interface SmartAuthorizeOptions {
  /** The OpenEMR user who logs in on the authorization server's login page. */
  username: string;
  password: string;
  /** The patient picked on the patient-selection page (shown for `launch/patient`): uuid, or a last name. */
  patient?: { uuid: string } | { lname: string } | undefined;
  /** Which of the offered scopes to approve (default: all). */
  approve?: ((offered: string[]) => string[]) | undefined;
  /** The `fetch` to use (default: the global one; msw intercepts it too). */
  fetch?: typeof fetch | undefined;
}

/** The end of {@link smartAuthorize}: where OpenEMR sent the browser, and the pages it went through. */
export interface SmartAuthorizeResult {
  /** The redirect URI with `code` and `state` (or `error`). */
  redirect: URL;
  /** `method path` of every request, in order. */
  steps: string[];
}

/**
 * Plays the browser through OpenEMR's SMART App Launch pages, as recorded on 8.0.0 (files 70–76): the
 * authorize redirect to the login page, the login form (`user_role=api`), the patient picker when asked, the
 * scope approval form, and the redirect with the code. Cookies are kept per path as a browser would. Works
 * against the emulator (msw or HTTP) and a real OpenEMR alike.
 * @param authorizeUrl - from `OpenEmrOAuth.authorizationUrl`
 * @param options - user, patient, approved scopes
 * @returns the redirect to the app
 * @throws Error when a page is not what OpenEMR answers (the message names the step)
 */
export async function smartAuthorize(
  authorizeUrl: string,
  options: SmartAuthorizeOptions,
): Promise<SmartAuthorizeResult> {
  const doFetch = options.fetch ?? fetch;
  const jar = new Map<string, string>();
  const steps: string[] = [];
  const redirectUri = new URL(authorizeUrl).searchParams.get('redirect_uri') ?? '';
  const go = async (method: string, url: URL, form?: URLSearchParams): Promise<Response> => {
    steps.push(`${method} ${url.pathname}`);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await doFetch(url, {
      method,
      redirect: 'manual',
      headers: {
        ...(cookie === '' ? {} : { cookie }),
        ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      body: form?.toString(),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair?.indexOf('=') ?? -1;
      if (pair !== undefined && at > 0) jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    return res;
  };
  const field = (html: string, name: string): string => {
    const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`);
    const m = re.exec(html);
    if (!m) throw new Error(`OpenEMR page without the ${name} field`);
    return m[1] ?? '';
  };
  let url = new URL(authorizeUrl);
  let last: { method: string; form?: URLSearchParams | undefined } = { method: 'GET' };
  const send = async (method: string, to: URL, form?: URLSearchParams): Promise<Response> => {
    last = { method, form };
    url = to;
    return go(method, to, form);
  };
  let res = await send('GET', url);
  for (let hops = 0; hops < 16; hops++) {
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      const next = new URL(location, url);
      if (next.toString().startsWith(redirectUri)) return { redirect: next, steps };
      // A browser repeats the method and body on 307/308 (OpenEMR's login answers 307), and GETs otherwise.
      res =
        res.status === 307 || res.status === 308 ? await send(last.method, next, last.form) : await send('GET', next);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`OpenEMR answered ${res.status} at ${url.pathname}: ${html.slice(0, 200)}`);
    if (html.includes('name="userLogin"') && html.includes('name="password"')) {
      if (html.includes('verify the information you have entered')) throw new Error('OpenEMR refused the login');
      const form = new URLSearchParams({
        csrf_token_form: field(html, 'csrf_token_form'),
        email: '',
        username: options.username,
        password: options.password,
        user_role: 'api',
      });
      const action = /<form[^>]*name="userLogin"[^>]*action="([^"]+)"/.exec(html)?.[1] ?? '';
      res = await send('POST', new URL(action.replace(/&amp;/g, '&'), url), form);
    } else if (html.includes('id="patientForm"')) {
      const wanted = options.patient;
      if (wanted === undefined) throw new Error('OpenEMR asks for a patient: pass options.patient');
      let uuid: string | undefined;
      if ('uuid' in wanted) uuid = wanted.uuid;
      else {
        const search = new URL(url);
        search.search = new URLSearchParams({ 'search[lname]': wanted.lname }).toString();
        const found = await (await go('GET', search)).text();
        uuid = /data-patient-id="([^"]+)"/.exec(found)?.[1];
        if (uuid === undefined) throw new Error(`no patient named ${wanted.lname} on the picker`);
      }
      const form = new URLSearchParams({ csrf_token: field(html, 'csrf_token'), patient_id: uuid });
      const action = /<form[^>]*id="patientForm"[^>]*action="([^"]+)"/.exec(html)?.[1] ?? '';
      res = await send('POST', new URL(action.replace(/&amp;/g, '&'), url), form);
    } else if (html.includes('name="proceed"')) {
      const offered = offeredScopes(html);
      const approved = options.approve?.(offered) ?? offered;
      const form = new URLSearchParams();
      for (const s of approved) form.append(`scope[${s}]`, s);
      form.append('csrf_token_form', field(html, 'csrf_token_form'));
      form.append('proceed', '1');
      const action = /<form[^>]*action="([^"]+\/device\/code)"/.exec(html)?.[1] ?? '';
      res = await send('POST', new URL(action.replace(/&amp;/g, '&'), url), form);
    } else if (html.includes('<form method="POST"')) {
      const action = /<form method="POST" action="([^"]+)"/.exec(html)?.[1] ?? '';
      res = await send('POST', new URL(action.replace(/&amp;/g, '&'), url), new URLSearchParams());
    } else throw new Error(`unexpected OpenEMR page at ${url.pathname}`);
  }
  throw new Error('too many steps in the SMART authorization');
}

/**
 * The scopes OpenEMR's approval page submits when every box stays checked. The real page (recorded-8.0.0
 * file 75) builds the resource scopes with JavaScript from `resource-master-checkbox` blocks (context, SMART
 * version, checked actions); the plain `scope[...]` inputs are the others (`openid`, `fhirUser`, …).
 */
function offeredScopes(html: string): string[] {
  const out = [...html.matchAll(/<input[^>]*name="scope\[[^\]]*\]"[^>]*value="([^"]*)"/g)].map((m) => m[1] ?? '');
  const attr = (tag: string, name: string): string | undefined => new RegExp(`${name}="([^"]*)"`).exec(tag)?.[1];
  const inputs = [...html.matchAll(/<input[^>]*>/g)].map((m) => m[0]);
  const resources = [
    ...new Set(inputs.filter((t) => t.includes('resource-master-checkbox')).map((t) => attr(t, 'data-resource') ?? '')),
  ];
  for (const resource of resources) {
    const mine = inputs.filter((t) => attr(t, 'data-resource') === resource);
    const context = attr(mine.find((t) => t.includes('resource-context')) ?? '', 'value') ?? 'user';
    const version = attr(mine.find((t) => t.includes('resource-version')) ?? '', 'value') ?? 'v2';
    const actions = mine
      .filter((t) => t.includes('action-checkbox') && /\schecked/.test(t))
      .map((t) => attr(t, 'data-action') ?? '');
    if (version === 'v1') {
      if (actions.some((a) => a === 'r' || a === 's')) out.push(`${context}/${resource}.read`);
      if (actions.some((a) => a === 'c' || a === 'u' || a === 'd')) out.push(`${context}/${resource}.write`);
    } else if (actions.length > 0)
      out.push(`${context}/${resource}.${[...'cruds'].filter((a) => actions.includes(a)).join('')}`);
  }
  return out;
}
