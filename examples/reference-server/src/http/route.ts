/**
 * The route table. Each route is declared once with its zod schemas and the permission it needs; the same
 * declaration registers the Express handler, enforces authentication and RBAC, validates input, and generates the
 * OpenAPI document. The route-security test walks this table.
 */
import type { IRouter, Request, Response, RequestHandler } from 'express';
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
  /**
   * The body as JSON text, when the handler has it already (must equal `JSON.stringify(body)`): sent as is; a
   * {@link PreparedJson} also keeps its bytes and entity tag for the next answer with the same text.
   */
  json?: string | PreparedJson;
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

/** Express's `etag fn` setting: the entity tag of a body. */
type EtagFunction = (body: Buffer, encoding?: BufferEncoding) => string | undefined;

/**
 * A JSON answer that is sent again and again (a cached read's): its UTF-8 bytes are kept, and its entity tag once
 * computed. Express's `res.send` of a string encodes it and hashes it (sha1 for the weak ETag) on every answer; of
 * these bytes, with the ETag already set, it does neither. Conditional requests are answered as before (`res.send`
 * still answers 304 to a matching `If-None-Match`). The text must never change once prepared.
 */
export class PreparedJson {
  /** The text as UTF-8. */
  readonly bytes: Buffer;
  private tag?: { fn: EtagFunction; etag: string | undefined };

  /** @param text - the JSON text */
  constructor(text: string) {
    this.bytes = Buffer.from(text, 'utf8');
  }

  /**
   * The entity tag the app's `etag fn` gives these bytes (as `res.send` would compute it), computed once.
   * @param fn - the app's `etag fn`
   */
  etag(fn: EtagFunction): string | undefined {
    if (this.tag?.fn !== fn) this.tag = { fn, etag: fn(this.bytes) };
    return this.tag.etag;
  }
}

/**
 * Sends a prepared JSON answer as `res.type(contentType).send(text)` would: the same headers (Content-Type with
 * its charset, Content-Length, the ETag of the app's setting), 304 to a matching conditional request, no body to HEAD.
 * @param typeHeader - the Content-Type header of the route's JSON answers (with the charset `res.send` adds to text)
 */
function sendPrepared(req: Request, res: Response, typeHeader: string, json: PreparedJson): void {
  res.setHeader('Content-Type', typeHeader);
  const etagFn = req.app.get('etag fn') as EtagFunction | undefined;
  if (typeof etagFn === 'function' && res.getHeader('ETag') === undefined) {
    const etag = json.etag(etagFn);
    if (etag) res.setHeader('ETag', etag);
  }
  res.send(json.bytes);
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
 * Registers routes on a router, or on the app itself (one router less to cross on every request).
 * @param router - the Express router or app
 * @param routes - the table
 * @param auth - authentication of bearer tokens and webhook signatures
 */
export function registerRoutes(router: IRouter, routes: readonly AnyRoute[], auth: Authenticator): void {
  for (const route of routes) {
    const contentType = route.response.contentType ?? 'application/json';
    // The Content-Type header `res.type(contentType).send(text)` sets, worked out at the route's first prepared answer.
    let preparedType: string | undefined;
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
      // Express parses the query string on each read of `req.query`: only for routes that take one.
      const query = route.query ? parse(route.query, req.query, 'query') : undefined;
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
      if (result.headers) for (const name in result.headers) res.setHeader(name, result.headers[name]!);
      res.status(result.status ?? route.response.status);
      if (res.statusCode === 204) return void res.end();
      if (!contentType.includes('json')) return void res.type(contentType).send(result.body);
      if (!(result.json instanceof PreparedJson))
        return void res.type(contentType).send(result.json ?? JSON.stringify(result.body));
      if (preparedType === undefined) {
        const type = String(res.type(contentType).getHeader('Content-Type'));
        preparedType = /;\s*charset=/i.test(type) ? type : `${type}; charset=utf-8`;
      }
      sendPrepared(req, res, preparedType, result.json);
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
