/**
 * The route table. Each route is declared once with its zod schemas and the permission it needs; the same
 * declaration registers the Express handler, enforces authentication and RBAC, validates input, and generates the
 * OpenAPI document. The route-security test walks this table.
 */
import type { Request, Response, Router, RequestHandler } from 'express';
import type { z } from 'zod';
import { ValidationError } from '@cdss/core';
import type { Permission } from '../auth/rbac.js';
import { isAllowed } from '../auth/rbac.js';
import type { Principal } from '../auth/tokens.js';
import { ApiError } from './errors.js';

/** How a route authenticates: a permission from the RBAC table, none (public), or the webhook signature. */
export type RouteAccess = { permission: Permission } | 'public' | 'webhook-signature';

/** What a handler receives. */
export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The caller; present on every route except public and webhook ones. */
  principal: Principal;
  requestId: string;
  req: Request;
  res: Response;
}

/** What a handler returns. */
export interface RouteResult<R> {
  status?: number;
  body: R;
  /** The body as JSON text, when the handler has it already (must equal `JSON.stringify(body)`): sent as is. */
  json?: string;
  headers?: Record<string, string>;
}

/** One route. */
export interface RouteDefinition<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> {
  method: 'get' | 'post' | 'put' | 'delete';
  /** OpenAPI-style path, e.g. `/api/patients/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  tags: string[];
  access: RouteAccess;
  params?: P;
  query?: Q;
  /**
   * Request headers the route reads, by their canonical names (e.g. `Idempotency-Key`), for the OpenAPI document;
   * the handler reads and validates them (a header may need the caller or the body to be understood).
   */
  headers?: z.ZodObject;
  body?: B;
  /** Content type of the body, when not JSON. */
  bodyContentType?: string;
  response: { status: number; description: string; schema: R; contentType?: string };
  /** Extra documented error statuses besides the defaults. */
  errors?: number[];
  handler(ctx: RouteContext<z.infer<P>, z.infer<Q>, z.infer<B>>): Promise<RouteResult<z.infer<R>>>;
}

/** Any route, for tables. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a heterogeneous table of routes needs an erased type
export type AnyRoute = RouteDefinition<any, any, any, any>;

/**
 * Declares a route with its types inferred from the schemas.
 * @param route - the declaration
 */
export function defineRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType>(
  route: RouteDefinition<P, Q, B, R>,
): RouteDefinition<P, Q, B, R> {
  return route;
}

/**
 * The 403 message: says plainly that the action is not available for the caller's role (and which permission it
 * needs, for whoever administers roles).
 * @param roles - the caller's roles
 * @param permission - what the route needs
 */
export function notAvailableForRole(roles: readonly string[], permission: Permission): string {
  const role = roles.length > 0 ? roles.join(', ') : 'no CDSS role';
  return `This is not available for your role (${role}); it needs the ${permission} permission`;
}

/** `/api/patients/{id}` → `/api/patients/:id`. */
export function toExpressPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

function parse<T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  if (!schema) return undefined as z.infer<T>;
  const result = schema.safeParse(value);
  if (!result.success) throw ValidationError.fromZod(result.error, `Invalid ${where}`);
  return result.data;
}

/** Middleware that authenticates a bearer token (or lets public routes through). */
export interface Authenticator {
  /** Verifies the request's bearer token; throws ApiError(401) when missing or invalid. */
  authenticate(req: Request): Promise<Principal>;
  /** Verifies the webhook signature of a raw body; throws ApiError(401) when missing or invalid. */
  verifyWebhook(req: Request): Promise<void>;
  /** Called when the policy refuses an authenticated caller (for the audit trail). */
  onDenied?(route: AnyRoute, principal: Principal, req: Request): Promise<void>;
}

/**
 * Registers routes on a router.
 * @param router - the Express router
 * @param routes - the table
 * @param auth - authentication of bearer tokens and webhook signatures
 */
export function registerRoutes(router: Router, routes: readonly AnyRoute[], auth: Authenticator): void {
  for (const route of routes) {
    const handler: RequestHandler = async (req, res) => {
      let principal: Principal | undefined;
      if (route.access === 'webhook-signature') {
        await auth.verifyWebhook(req);
      } else if (route.access !== 'public') {
        principal = await auth.authenticate(req);
        req.principal = principal;
        if (!isAllowed(principal.roles, route.access.permission)) {
          await auth.onDenied?.(route, principal, req);
          throw new ApiError(403, 'forbidden', notAvailableForRole(principal.roles, route.access.permission));
        }
      }
      const params = parse(route.params, req.params, 'path parameters');
      const query = parse(route.query, req.query, 'query');
      // A webhook's verifier has checked its raw bytes (signature, then the body against the schema).
      const body = route.access === 'webhook-signature' ? req.body : parse(route.body, req.body, 'request body');
      const result = await route.handler({
        params,
        query,
        body,
        principal: principal as Principal,
        requestId: req.id,
        req,
        res,
      });
      if (res.headersSent) return;
      for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
      res.status(result.status ?? route.response.status);
      if (res.statusCode === 204) return void res.end();
      const contentType = route.response.contentType ?? 'application/json';
      if (contentType.includes('json')) res.type(contentType).send(result.json ?? JSON.stringify(result.body));
      else res.type(contentType).send(result.body);
    };
    router[route.method](toExpressPath(route.path), handler);
  }
  // Any other method on a declared path answers 405 with the methods it has (RFC 9110 §15.5.6).
  const methodsByPath = new Map<string, string[]>();
  for (const route of routes) {
    const methods = methodsByPath.get(route.path) ?? [];
    methods.push(...(route.method === 'get' ? ['GET', 'HEAD'] : [route.method.toUpperCase()]));
    methodsByPath.set(route.path, methods);
  }
  for (const [path, methods] of methodsByPath) {
    const allow = methods.join(', ');
    router.all(toExpressPath(path), (req, res) => {
      res.setHeader('Allow', allow);
      throw new ApiError(405, 'not-supported', `${req.method} is not allowed here; use ${allow}`);
    });
  }
}
