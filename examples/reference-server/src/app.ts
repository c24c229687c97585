/**
 * Assembles the HTTP server: security middleware, the route table, the OpenAPI document, health and metrics, the
 * WebSocket hub and graceful shutdown. The packages' adapters are composed by the caller (see `compose.ts`).
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import express, { type Request, type Router } from 'express';
import helmet from 'helmet';
import type { Store } from 'express-rate-limit';
import cors from 'cors';
import type { Logger } from 'pino';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';
import type { TokenVerifier } from './auth/tokens.js';
import type { EventBus, EventLog } from './events.js';
import { attachWebSocket, type WebSocketHub } from './ws.js';
import { clusterMetrics } from './cluster.js';
import { answerClientError, errorHandler, ApiError } from './http/errors.js';
import {
  corsUnlessSameOrigin,
  httpMetrics,
  identify,
  precomputedHeaders,
  rateLimit,
  requestId,
  requirePrincipal,
  sequence,
  whenBody,
} from './http/security.js';
import { notAvailableForRole, registerRoutes, type AnyRoute } from './http/route.js';
import { buildOpenApiDocument, OPENAPI_PAGE } from './http/openapi.js';
import { isAllowed } from './auth/rbac.js';
import { latestBirthDate } from '@cdss/client';
import type { Auditor } from './domain/auditor.js';

/** A dependency checked by `/readyz`. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** What the app is built from. */
export interface AppDeps {
  config: ServerConfig;
  logger: Logger;
  metrics: ServerMetrics;
  verifier: TokenVerifier;
  bus: EventBus;
  /** The replay log that numbers the bus's events (WebSocket clients reconnect with `since`). */
  eventLog?: EventLog;
  routes: readonly AnyRoute[];
  readiness: readonly ReadinessCheck[];
  /** Verifies a signed webhook request (the raw body is in `req.body` as a Buffer). */
  verifyWebhook(req: Request): Promise<void>;
  /** Records refused attempts (routes whose permission the caller's role lacks). */
  auditor?: Auditor;
  /** Origins the dashboard may connect to besides this server (the SMART EHR), for the CSP `connect-src`. */
  connectSources?: readonly string[];
  /** Routers with their own protocols and authentication (CDS Hooks), mounted at the root after the API routes. */
  routers?: readonly Router[];
  /**
   * Per-user rate-limit counters shared by every instance (connected mode); per-IP limits are then left to nginx.
   * Default: per user and per IP, in this process.
   */
  rateLimitStore?: Store;
  /** The dashboard's built files, served at `/` when present. */
  staticDir?: string;
  version: string;
}

/** The running server. */
export interface CdssServer {
  app: express.Express;
  server: Server;
  hub: WebSocketHub;
  /** Starts listening; resolves with the bound port. */
  listen(port?: number, host?: string): Promise<number>;
  /** Graceful shutdown: stop accepting, finish in-flight requests, close WebSockets with 1001. */
  close(): Promise<void>;
  routes: readonly AnyRoute[];
}

/**
 * Builds the server.
 * @param deps - configuration, adapters and the route table
 */
export function createCdssServer(deps: AppDeps): CdssServer {
  const { config, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.CDSS_TRUST_PROXY);
  // The fixed head of the stack runs as two layers (see `sequence`): request id, metrics, security headers, CORS;
  // then, after the webhooks' raw body, the JSON body, the bearer token and the rate limits.
  app.use(
    sequence(
      requestId,
      httpMetrics(metrics),
      // Helmet's headers are the same on every response: computed once.
      precomputedHeaders(
        helmet({
          contentSecurityPolicy: {
            directives: {
              // The viewer's image decoders are WebAssembly; its tool cursors are blob: images.
              'script-src': ["'self'", "'unsafe-inline'", "'wasm-unsafe-eval'"],
              'img-src': ["'self'", 'data:', 'blob:'],
              'worker-src': ["'self'", 'blob:'],
              // A SMART-launched dashboard talks to the EHR's authorization and FHIR servers (only those configured).
              ...(deps.connectSources?.length ? { 'connect-src': ["'self'", ...deps.connectSources] } : {}),
            },
          },
        }),
      ),
      corsUnlessSameOrigin(
        cors({
          origin: (origin, callback) => callback(null, !origin || config.CDSS_CORS_ORIGINS.includes(origin)),
          credentials: false,
          exposedHeaders: ['X-Request-Id'],
        }),
      ),
    ),
  );
  // Webhooks are verified over the exact bytes that were signed, so they get the raw body.
  app.use('/api/webhooks', express.raw({ type: '*/*', limit: config.CDSS_BODY_LIMIT }));
  app.use(
    sequence(
      whenBody(
        express.json({
          limit: config.CDSS_BODY_LIMIT,
          strict: true,
          type: ['application/json', 'application/*+json'],
        }),
      ),
      identify(deps.verifier),
      rateLimit({
        perMinute: config.CDSS_RATE_LIMIT_PER_MINUTE,
        perIp: !deps.rateLimitStore,
        ...(deps.rateLimitStore ? { userStore: deps.rateLimitStore } : {}),
      }),
    ),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', version: deps.version });
  });
  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      deps.readiness.map(async ({ name, check }) => {
        try {
          await check();
          return { name, ok: true };
        } catch (error) {
          logger.warn({ port: name, err: { message: (error as Error).message } }, 'readiness check failed');
          return { name, ok: false };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'degraded',
      checks: Object.fromEntries(results.map((r) => [r.name, r.ok ? 'up' : 'down'])),
    });
  });
  const metricsText = clusterMetrics(metrics.registry);
  app.get('/metrics', async (req, res) => {
    if (!config.CDSS_METRICS_PUBLIC) {
      const principal = requirePrincipal(req);
      if (!isAllowed(principal.roles, 'metrics:read'))
        throw new ApiError(403, 'forbidden', notAvailableForRole(principal.roles, 'metrics:read'));
    }
    res.type(metrics.registry.contentType).send(await metricsText());
  });

  // Built at start (a route whose schemas cannot be documented stops the server there) and again when the day
  // changes: the latest birth date accepted is today's, a pattern in the document.
  const buildDocument = (day: string) => ({
    day,
    document: buildOpenApiDocument(deps.routes, {
      title: 'CDSS reference server',
      version: deps.version,
      description: 'Clinical decision support for brain-tumour MRI. Errors are FHIR OperationOutcome resources.',
    }),
  });
  let openApi = buildDocument(latestBirthDate());
  app.get('/openapi.json', (_req, res) => {
    const day = latestBirthDate();
    if (openApi.day !== day) openApi = buildDocument(day);
    res.json(openApi.document);
  });
  app.get('/docs', (_req, res) => {
    res.type('html').send(OPENAPI_PAGE);
  });

  // On the app itself rather than a router mounted at '/': every API request would cross that router's layer and
  // its own routing pass (URL parsing, prefix trimming, parameter processing) before its route.
  registerRoutes(app, deps.routes, {
    authenticate: async (req) => requirePrincipal(req),
    verifyWebhook: deps.verifyWebhook,
    ...(deps.auditor
      ? {
          onDenied: async (route, principal, req) => {
            const auditor = deps.auditor!;
            const action = route.method === 'get' ? 'read' : route.method === 'post' ? 'create' : 'update';
            await auditor.denied({
              principal,
              requestId: req.id,
              action,
              resource: `${route.method.toUpperCase()} ${route.path}`,
            });
          },
        }
      : {}),
  });
  for (const extra of deps.routers ?? []) app.use(extra);

  app.use('/api', (_req, _res, next) => next(new ApiError(404, 'not-found', 'No such route')));
  if (deps.staticDir && existsSync(deps.staticDir)) {
    const staticDir = deps.staticDir;
    app.use(
      express.static(staticDir, {
        index: 'index.html',
        maxAge: '1h',
        setHeaders: (res, path) => {
          if (path.endsWith('index.html') || path.endsWith('sw.js')) res.setHeader('Cache-Control', 'no-cache');
        },
      }),
    );
    // Client-side routes of the dashboard.
    app.get(/^\/(?!api\/|ws$).*/, (_req, res) =>
      res.sendFile('index.html', { root: staticDir, headers: { 'Cache-Control': 'no-cache' } }),
    );
  }
  app.use((_req, _res, next) => next(new ApiError(404, 'not-found', 'No such route')));
  app.use(errorHandler(logger));

  const server = createServer(app);
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  server.on('clientError', answerClientError);
  const hub = attachWebSocket({
    server,
    verifier: deps.verifier,
    bus: deps.bus,
    ...(deps.eventLog ? { log: deps.eventLog } : {}),
    logger,
    metrics,
    maxUnauthenticatedPerAddress: config.CDSS_WS_MAX_UNAUTHENTICATED_PER_IP,
    maxUnauthenticated: config.CDSS_WS_MAX_UNAUTHENTICATED,
    // Express's own `req.ip` (trust proxy applied), over the upgrade request, which never passes through Express.
    clientAddress: (req) =>
      (Object.create(app.request, { headers: { value: req.headers }, socket: { value: req.socket } }) as Request).ip ??
      'unknown',
  });

  return {
    app,
    server,
    hub,
    routes: deps.routes,
    listen(port = config.PORT, host = config.HOST) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await hub.close();
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), config.CDSS_SHUTDOWN_GRACE_MS);
      grace.unref();
      await closed;
      clearTimeout(grace);
    },
  };
}
