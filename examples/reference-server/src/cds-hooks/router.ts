/**
 * The CDS Hooks 2.0 endpoints, on their own router: `GET /cds-services` (discovery), `POST /cds-services/{id}` (a
 * hook call) and `POST /cds-services/{id}/feedback`. Every call is authenticated by the client's signed JWT, every
 * request and response is validated against the specification's schemas, and every call that touches patient data
 * is audited.
 * @see https://cds-hooks.hl7.org/2.0/
 */
import express, { type Request, type Router } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { ApiError } from '../http/errors.js';
import type { Auditor } from '../domain/auditor.js';
import type { Principal } from '../auth/tokens.js';
import { CdsAuthError, type CdsCaller, type CdsCallerVerifier } from './caller-auth.js';
import { resolvePrefetch, type ResolvePrefetchOptions } from './prefetch.js';
import {
  discoveryResponseSchema,
  feedbackRequestSchema,
  hookContextSchemas,
  hookRequestSchema,
  hookResponseSchema,
} from './schemas.js';
import type { CdsServiceDefinition, ServiceCall } from './services.js';
import type { CdsStore } from './store.js';

/** What the router needs. */
export interface CdsRouterDeps {
  /**
   * The public base URL: `aud` of discovery is `{publicUrl}/cds-services`. Without it, the URL the client called
   * (the request's scheme and Host, as the `trust proxy` setting reads them) is used.
   */
  publicUrl?: string;
  services: readonly CdsServiceDefinition[];
  verifier: CdsCallerVerifier;
  store: CdsStore;
  auditor: Auditor;
  logger: Logger;
  prefetch?: ResolvePrefetchOptions;
  now?: () => Date;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw ValidationError.fromZod(result.error, `Invalid ${what}`);
  return result.data;
}

/** The audit identity of a call: the EHR user when the hook names one, through the calling client. */
function principalOf(caller: CdsCaller, userId?: string): Principal {
  return {
    id: userId ? `${caller.iss}#${userId}` : caller.iss,
    name: userId ? `${userId} via CDS client ${caller.name}` : `CDS client ${caller.name}`,
    roles: [],
  };
}

/**
 * The router, to mount at the server root.
 * @param deps - services, caller verification, store, auditor
 */
export function cdsHooksRouter(deps: CdsRouterDeps): Router {
  const publicUrl = (req: Request): string =>
    (deps.publicUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`).replace(/\/+$/, '');
  const byId = new Map(deps.services.map((service) => [service.definition.id, service]));
  const router = express.Router();

  async function authenticate(req: Request, audience: string | string[]): Promise<CdsCaller> {
    try {
      return await deps.verifier.verify(req.header('authorization'), audience);
    } catch (error) {
      if (error instanceof CdsAuthError) throw new ApiError(401, 'login', error.reason);
      throw error;
    }
  }

  function serviceOf(id: string | undefined): CdsServiceDefinition {
    const service = id ? byId.get(id) : undefined;
    if (!service) throw new ApiError(404, 'not-found', 'No such CDS Service');
    return service;
  }

  router.get('/cds-services', async (req, res) => {
    await authenticate(req, `${publicUrl(req)}/cds-services`);
    res.json(
      parse(discoveryResponseSchema, { services: deps.services.map((s) => s.definition) }, 'discovery response'),
    );
  });

  router.post('/cds-services/:id', async (req, res) => {
    const service = serviceOf(req.params['id']);
    const url = `${publicUrl(req)}/cds-services/${service.definition.id}`;
    const caller = await authenticate(req, url);
    const request = parse(hookRequestSchema, req.body, 'CDS Hooks request');
    if (request.hook !== service.definition.hook)
      throw new ApiError(400, 'invalid', `This service answers ${service.definition.hook}, not ${request.hook}`, [
        'hook',
      ]);
    const context = parse(hookContextSchemas[service.definition.hook], request.context, `${request.hook} context`);
    const response = await deps.auditor.around(
      {
        principal: principalOf(caller, context.userId),
        requestId: req.id,
        action: 'read',
        resource: `CdsService/${service.definition.id}`,
        patientId: context.patientId,
      },
      async () => {
        const prefetch = await resolvePrefetch(service.templates, request, deps.prefetch);
        const call = { baseUrl: publicUrl(req), hookInstance: request.hookInstance, context, prefetch };
        return service.answer(call as ServiceCall);
      },
    );
    const checked = hookResponseSchema.safeParse(response);
    if (!checked.success) {
      // Our own answer broke the specification: a bug, never sent.
      deps.logger.error(
        { service: service.definition.id, issues: checked.error.issues.length },
        'invalid CDS response',
      );
      throw new ApiError(500, 'exception', 'The CDS Service produced an invalid response');
    }
    res.json(checked.data);
  });

  router.post('/cds-services/:id/feedback', async (req, res) => {
    const service = serviceOf(req.params['id']);
    const url = `${publicUrl(req)}/cds-services/${service.definition.id}`;
    // The endpoint called is the feedback URL; some clients sign for the service URL: both name this service.
    const caller = await authenticate(req, [`${url}/feedback`, url]);
    const { feedback } = parse(feedbackRequestSchema, req.body, 'feedback');
    const now = (deps.now ?? (() => new Date()))().getTime();
    for (const item of feedback) {
      const offer = await deps.store.offer(item.card);
      const patientId = offer?.serviceId === service.definition.id ? offer.patientId : undefined;
      await deps.auditor.around(
        {
          principal: principalOf(caller),
          requestId: req.id,
          action: 'create',
          resource: `CdsFeedback/${service.definition.id}/${item.card}`,
          ...(patientId ? { patientId } : {}),
        },
        async () => {
          await deps.store.recordFeedback({
            serviceId: service.definition.id,
            caller: caller.iss,
            ...(patientId ? { patientId } : {}),
            item,
            receivedAt: now,
          });
          if (!offer || !patientId || item.outcome !== 'accepted') return;
          const accepted = new Set(item.acceptedSuggestions?.map((s) => s.id));
          if (offer.suggestions.some((s) => s.kind === 'auto-analysis' && accepted.has(s.uuid)))
            await deps.store.requestAutoAnalysis({
              patientId,
              cardUuid: offer.cardUuid,
              ...(offer.orderRefs[0] ? { orderRef: offer.orderRefs[0] } : {}),
              requestedBy: caller.iss,
              requestedAt: now,
            });
        },
      );
    }
    res.json({});
  });

  return router;
}
