/**
 * The audit log, for administrators: filters by user, patient, outcome and time range, newest first, a page at a
 * time (keyset cursors, so paging through a large trail stays cheap and stable while records are added).
 */
import { z } from 'zod';
import { auditListSchema } from '../api-schemas.js';
import type { AuditStore } from '../audit.js';
import { defineRoute, type AnyRoute } from '../http/route.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A time filter: an ISO 8601 date-time with an offset (`2026-12-06T10:15:30Z`, fractions allowed) or a date
 * (`2026-12-06`, UTC). As an upper bound it includes the whole unit it names: `to=2026-12-06T10:15:30Z` includes
 * 10:15:30.999, `to=2026-12-06` the whole day.
 */
const instant = (bound: 'from' | 'to') =>
  z
    .union([z.iso.datetime({ offset: true }), z.iso.date()])
    .transform((text) => {
      const start = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
      if (bound === 'from') return start;
      if (text.length === 10) return start + DAY_MS - 1;
      return /\.\d+/.test(text) ? start : start + 999;
    })
    .meta({
      description:
        bound === 'from'
          ? 'Records at or after this instant: an ISO 8601 date-time with offset, or a date (UTC)'
          : 'Records at or before this instant, including the whole second (or day) it names',
      example: bound === 'from' ? '2026-12-06T08:00:00Z' : '2026-12-06T17:30:00Z',
    });

/**
 * The audit routes.
 * @param store - the audit store
 */
export function auditRoutes(store: AuditStore): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/audit',
      operationId: 'listAudit',
      summary: 'Audit records, newest first (who read or changed which patient data), filtered and paged',
      tags: ['audit'],
      access: { permission: 'audit:read' },
      query: z
        .strictObject({
          patient: z.string().min(1).max(64).optional(),
          user: z.string().min(1).max(128).optional(),
          outcome: z.enum(['success', 'failure', 'denied']).optional(),
          from: instant('from').optional(),
          to: instant('to').optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
          cursor: z.string().min(1).max(200).optional().meta({ description: 'The previous page’s nextCursor' }),
        })
        .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, {
          message: 'from must not be after to',
          path: ['from'],
        }),
      response: { status: 200, description: 'A page of audit records', schema: auditListSchema },
      errors: [400],
      handler: async ({ query }) => ({
        body: await store.list({
          ...(query.patient ? { patientId: query.patient } : {}),
          ...(query.user ? { userId: query.user } : {}),
          ...(query.outcome ? { outcome: query.outcome } : {}),
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.to !== undefined ? { to: query.to } : {}),
          ...(query.cursor ? { cursor: query.cursor } : {}),
          limit: query.limit,
        }),
      }),
    }),
  ];
}
