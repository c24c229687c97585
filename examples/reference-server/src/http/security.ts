/**
 * Cross-cutting HTTP middleware: request ids, authentication of bearer tokens, rate limits, metrics and audit hooks.
 */
import { randomBytes } from 'node:crypto';
import type { RequestHandler, Request, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Principal, TokenVerifier } from '../auth/tokens.js';
import type { ServerMetrics } from '../metrics.js';
import { ApiError, operationOutcome } from './errors.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's documented way to type request extensions
  namespace Express {
    interface Request {
      /** The request id (from a sane `X-Request-Id`, else a new UUID). */
      id: string;
      /** The authenticated caller, when a valid bearer token came with the request. */
      principal?: Principal;
      /** Why the bearer token was refused, when one came and was invalid. */
      authError?: string;
    }
  }
}

/** This process's prefix of request ids: 72 random bits, so ids of different processes and restarts never meet. */
const idPrefix = randomBytes(9).toString('base64url');
let idCounter = 0;
const SANE_ID = /^[\w.-]{8,128}$/;

/**
 * Assigns the request id and echoes it: a sane incoming `X-Request-Id`, else this process's random prefix and a
 * counter (unique, and cheaper than a UUID per request).
 */
export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.headers['x-request-id'];
  req.id =
    typeof incoming === 'string' && SANE_ID.test(incoming) ? incoming : `${idPrefix}-${(idCounter++).toString(36)}`;
  res.setHeader('X-Request-Id', req.id);
  next();
};

/**
 * The headers a middleware sets when it sets the same ones on every response (helmet with static directives),
 * recorded once at start and set from that list on each response.
 * @param middleware - a middleware whose headers do not depend on the request
 * @throws Error when the middleware does anything but set or remove headers and call `next()` at once
 */
export function precomputedHeaders(middleware: RequestHandler): RequestHandler {
  const headers: Array<[string, string]> = [];
  let called = false;
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push([name, Array.isArray(value) ? value.join(', ') : String(value)]);
      return recorder;
    },
    removeHeader() {},
  };
  void middleware({ headers: {}, method: 'GET', url: '/' } as Request, recorder as unknown as Response, () => {
    called = true;
  });
  if (!called) throw new Error('the middleware did not call next() at once: its headers cannot be precomputed');
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}

/**
 * CORS: requests without an `Origin` header (same-origin, server to server) only get `Vary: Origin`, the rest go
 * through the full policy; the answer is the same, since CORS headers matter only to a browser that sent an origin.
 * @param policy - the CORS middleware (the `cors` package)
 */
export function corsUnlessSameOrigin(policy: RequestHandler): RequestHandler {
  return (req, res, next) => {
    if (req.headers.origin !== undefined) return policy(req, res, next);
    res.setHeader('Vary', 'Origin');
    next();
  };
}

/**
 * Verifies a bearer token when one is present. Never rejects by itself: each route decides (401 for protected
 * routes), so public routes keep working with a stale token in the browser.
 * @param verifier - the token verifier
 */
export function identify(verifier: TokenVerifier): RequestHandler {
  return (req, _res, next) => {
    const header = req.header('authorization');
    if (!header) return next();
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) {
      req.authError = 'Authorization must be a Bearer token';
      return next();
    }
    verifier.verify(match[1]).then(
      (principal) => {
        req.principal = principal;
        next();
      },
      () => {
        req.authError = 'Invalid or expired token';
        next();
      },
    );
  };
}

/**
 * The principal of an authenticated request.
 * @throws {@link ApiError} 401 otherwise
 */
export function requirePrincipal(req: Request): Principal {
  if (req.principal) return req.principal;
  throw new ApiError(401, 'login', req.authError ?? 'Authentication required: send a Bearer token');
}

/**
 * Rate limits: per IP for everyone, and per user for authenticated callers.
 * @param perMinute - requests per minute allowed per key
 */
export function rateLimits(perMinute: number): RequestHandler[] {
  const handler: RequestHandler = (_req, res) => {
    res
      .status(429)
      .type('application/fhir+json')
      .json(operationOutcome([{ code: 'throttled', diagnostics: 'Too many requests; slow down' }]));
  };
  return [
    rateLimit({ windowMs: 60_000, limit: perMinute, standardHeaders: 'draft-7', legacyHeaders: false, handler }),
    rateLimit({
      windowMs: 60_000,
      limit: perMinute,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      skip: (req) => !req.principal,
      keyGenerator: (req) => `user:${req.principal?.id ?? ''}`,
      handler,
    }),
  ];
}

/**
 * Records request latency by route template (never the concrete path, which holds ids).
 * @param metrics - the server's metrics
 */
export function httpMetrics(metrics: ServerMetrics): RequestHandler {
  // One histogram child per (method, route, status), resolved once: observing it then skips the label lookup.
  const children = new Map<string, { observe(seconds: number): void }>();
  return (req, res, next) => {
    const started = performance.now();
    res.once('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      const labels = {
        method: req.method,
        route: route ? `${req.baseUrl}${route}` : 'unmatched',
        status: String(res.statusCode),
      };
      const key = `${labels.method} ${labels.route} ${labels.status}`;
      let child = children.get(key);
      if (!child) children.set(key, (child = metrics.httpDuration.labels(labels)));
      child.observe((performance.now() - started) / 1000);
    });
    next();
  };
}
