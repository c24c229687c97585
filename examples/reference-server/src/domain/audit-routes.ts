/**
 * The audit log, for administrators.
 */
import { z } from 'zod';
import { auditListSchema } from '../api-schemas.js';
import type { AuditStore } from '../audit.js';
import { defineRoute, type AnyRoute } from '../http/route.js';

/**
 * The audit routes.
 * @param store - the append-only audit store
 */
export function auditRoutes(store: AuditStore): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/audit',
      operationId: 'listAudit',
      summary: 'Audit records, newest first (who read or changed which patient data)',
      tags: ['audit'],
      access: { permission: 'audit:read' },
      query: z.strictObject({
        patient: z.string().min(1).max(64).optional(),
        user: z.string().min(1).max(128).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      }),
      response: { status: 200, description: 'Audit records', schema: auditListSchema },
      handler: async ({ query }) => ({
        body: {
          items: await store.list({
            ...(query.patient ? { patientId: query.patient } : {}),
            ...(query.user ? { userId: query.user } : {}),
            limit: query.limit,
          }),
        },
      }),
    }),
  ];
}
