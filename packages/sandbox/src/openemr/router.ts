/**
 * The Express adapter of the OpenEMR emulator. Mount it at the root of an app (or under a prefix) and
 * point a client at that address: `/oauth2/default/...`, `/apis/default/api/...` and
 * `/apis/default/fhir/...` answer as OpenEMR does.
 */
import express, { type Request, type Response, type Router } from 'express';
import type { EmulatorRequest, EmulatorResponse } from './context.js';
import { OpenEmrEngine, type OpenEmrEmulatorOptions } from './engine.js';

/** An Express router that is an OpenEMR server, with its engine for administration in tests. */
export type OpenEmrEmulatorRouter = Router & {
  /** The core: `handle()`, `enableClient()`, `stats`, `store`. */
  readonly engine: OpenEmrEngine;
};

/**
 * The request body as text. The router reads bodies itself, but when it is mounted behind an app-level
 * `express.json()` / `express.urlencoded()` / `express.raw()` the body arrives parsed: re-encode it.
 */
function rawBody(req: Request): string | Buffer | undefined {
  const body: unknown = req.body;
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.length === 0 ? undefined : body;
  if (body === undefined || body === null || typeof body !== 'object') return undefined;
  if (Object.keys(body).length === 0 && !Array.isArray(body)) return undefined;
  if (typeof req.is('application/x-www-form-urlencoded') === 'string') {
    return new URLSearchParams(body as Record<string, string>).toString();
  }
  return JSON.stringify(body);
}

function toEmulatorRequest(req: Request): EmulatorRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return {
    method: req.method.toUpperCase(),
    url: req.url,
    headers,
    body: rawBody(req),
    origin: `${req.protocol}://${req.get('host') ?? 'localhost'}${req.baseUrl}`,
  };
}

function send(res: Response, out: EmulatorResponse): void {
  res.status(out.status);
  for (const [k, v] of Object.entries(out.headers)) res.setHeader(k, v);
  if (out.body === undefined) res.end();
  else res.end(out.body);
}

/**
 * Creates the OpenEMR emulator as an Express router.
 * @param options - version profile (`'7.0' | '8'`), data folder, token lifetimes, seed
 * @returns the router, with `.engine` for administration (enable clients, read stats)
 * @throws Error when an option is invalid
 * @example
 * ```ts
 * const app = express();
 * app.use(createOpenEmrEmulator({ version: '8', dataDir: './data/openemr' }));
 * app.listen(0, '127.0.0.1');
 * ```
 */
export function createOpenEmrEmulator(options: OpenEmrEmulatorOptions = {}): OpenEmrEmulatorRouter {
  const engine = new OpenEmrEngine(options);
  const router = express.Router();
  // Raw bytes for every content type: OpenEMR itself decodes JSON bodies leniently, forms by hand, and
  // documents arrive as multipart.
  router.use(express.raw({ type: () => true, limit: '50mb' }));
  router.use((req, res, next) => {
    engine.handle(toEmulatorRequest(req)).then((out) => send(res, out), next);
  });
  Object.defineProperty(router, 'engine', { value: engine, enumerable: true });
  return router as OpenEmrEmulatorRouter;
}

export { OpenEmrEngine };
