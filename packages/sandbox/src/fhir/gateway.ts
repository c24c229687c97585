/**
 * A SMART Backend Services gateway in front of another FHIR server: HAPI FHIR's JPA server checks no token, so
 * tests (and a sandbox that mixes in a real HAPI) put this reverse proxy in front of it. It serves the token
 * endpoint and the SMART configuration of a {@link SmartBackendAuth}, checks each request's bearer token and scopes,
 * and forwards what passes, with its `Authorization` header, to the upstream server. The upstream sees the gateway's
 * `Host`, so the links it writes (paging, `Location`) point back through the gateway.
 * @packageDocumentation
 */
import { createServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type Express, type Request, type Response } from 'express';
import { sendBearerRefusal, type SmartBackendAuth } from './backend-auth.js';

/** One request the gateway saw. */
export interface GatewayRequest {
  method: string;
  /** Path below the FHIR base, without query. */
  path: string;
  /** The `Authorization` header as sent (tests assert on it; never log it). */
  authorization: string | undefined;
  /** Forwarded upstream, or refused here with 401/403. */
  outcome: 'forwarded' | 401 | 403;
}

/** Options of {@link createSmartFhirGateway}. */
export interface SmartFhirGatewayOptions {
  auth: SmartBackendAuth;
  /** The upstream FHIR base URL, e.g. `http://127.0.0.1:28090/fhir`. */
  upstream: string;
  /** Where the gateway serves the FHIR API. Default `/fhir`. */
  basePath?: string | undefined;
  /** Called for every FHIR request, after the check. */
  onRequest?: ((seen: GatewayRequest) => void) | undefined;
}

/** The gateway: an express app, and a way to listen. */
export interface SmartFhirGateway {
  readonly app: Express;
  /**
   * Listens (127.0.0.1 by default).
   * @param port - default 0 (a free port)
   * @returns the gateway's FHIR base URL and a `close` function
   */
  listen(port?: number, host?: string): Promise<{ url: string; close(): Promise<void> }>;
}

/**
 * Creates the gateway.
 * @param options - the authorization server, the upstream FHIR base, the path to serve it at
 */
export function createSmartFhirGateway(options: SmartFhirGatewayOptions): SmartFhirGateway {
  const basePath = options.basePath ?? '/fhir';
  const upstream = new URL(options.upstream.replace(/\/+$/, ''));
  const app = express();
  app.disable('x-powered-by');
  app.use(options.auth.router);
  app.use(basePath, express.raw({ type: () => true, limit: '32mb' }), (req: Request, res: Response) => {
    const path = req.path.replace(/^\/+/, '');
    if (req.method === 'GET' && path === '.well-known/smart-configuration') {
      res.json(options.auth.smartConfiguration(`${req.protocol}://${req.get('host') ?? ''}`));
      return;
    }
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!(req.method === 'GET' && path === 'metadata')) {
      let body: unknown;
      try {
        body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch {
        body = undefined;
      }
      const checked = options.auth.check(req.get('authorization'), req.method, path, body);
      options.onRequest?.({
        method: req.method,
        path,
        authorization: req.get('authorization'),
        outcome: checked.ok ? 'forwarded' : checked.status,
      });
      if (!checked.ok) {
        sendBearerRefusal(res, checked);
        return;
      }
    }
    const target = new URL(`${upstream.pathname}${req.url}`, upstream.origin);
    const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
    const forwarded = send(
      target,
      { method: req.method, headers: { ...req.headers, 'content-length': String(raw.length) } },
      (answer) => {
        res.status(answer.statusCode ?? 502);
        for (const [name, value] of Object.entries(answer.headers))
          if (value !== undefined && name !== 'transfer-encoding' && name !== 'connection') res.setHeader(name, value);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => {
      if (!res.headersSent)
        res.status(502).json({
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'transient', diagnostics: 'upstream unreachable' }],
        });
      else res.destroy();
    });
    forwarded.end(raw);
  });
  return {
    app,
    listen(port = 0, host = '127.0.0.1') {
      const server = createServer(app);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          resolve({
            url: `http://${host}:${(server.address() as AddressInfo).port}${basePath}`,
            close: () =>
              new Promise<void>((done) => {
                server.close(() => done());
                server.closeAllConnections();
              }),
          });
        });
      });
    },
  };
}
