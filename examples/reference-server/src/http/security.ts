/**
 * Cross-cutting HTTP middleware: request ids, authentication of bearer tokens, rate limits, metrics and audit hooks.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Request } from 'express';
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

/** Assigns the request id and echoes it. */
export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.header('x-request-id');
  req.id = incoming && /^[\w.-]{8,128}$/.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', req.id);
  next();
};

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
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      end({
        method: req.method,
        route: route ? `${req.baseUrl}${route}` : 'unmatched',
        status: String(res.statusCode),
      });
    });
    next();
  };
}
