/**
 * The audit log, for administrators: filters by user, patient, outcome and time range, newest first, a page at a
 * time (keyset cursors, so paging through a large trail stays cheap and stable while records are added).
 */
import { z } from 'zod';
import { auditListSchema } from '../api-schemas.js';
import { decodeCursor, encodeCursor, type AuditStore } from '../audit.js';
import { ApiError } from '../http/errors.js';
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

/** How a store's cursors are made (see `encodeCursor`): its tag and the number of integers in a position. */
export interface AuditCursorFormat {
  kind: string;
  parts: number;
}

/** The cursor formats of the stores: `FileAuditStore`, `MySqlAuditStore` and the in-memory store of the tests. */
export const AUDIT_CURSORS = {
  file: { kind: 'f', parts: 1 },
  mysql: { kind: 'q', parts: 2 },
  memory: { kind: 'm', parts: 1 },
} as const satisfies Record<string, AuditCursorFormat>;

/**
 * The audit routes. On the wire a cursor is the store's position as integers joined by dots (`1234`, or
 * `1733480130000.17` for MySQL's time and sequence): the document's pattern says exactly which cursors the server
 * takes, and every one it allows names a position (a keyset bound: records before it), issued or not.
 * @param store - the audit store
 * @param cursor - how that store makes its cursors, from {@link AUDIT_CURSORS}
 */
export function auditRoutes(store: AuditStore, cursor: AuditCursorFormat): AnyRoute[] {
  // Up to 13 digits: a position in a file of up to 10 TB, an instant before the year 2286, a sequence number.
  // ASCII digits spelled out: `\d` in a Python (schemathesis) regex matches any Unicode digit.
  const cursorPattern = `^[0-9]{1,13}${'(?:\\.[0-9]{1,13})'.repeat(cursor.parts - 1)}$`;
  const fromWire = (text: string): string => encodeCursor(cursor.kind, text.split('.').map(Number));
  const toWire = (issued: string): string => decodeCursor(cursor.kind, issued, cursor.parts).join('.');
  return [
    defineRoute({
      method: 'get',
      path: '/api/audit',
      operationId: 'listAudit',
      summary: 'Audit records, newest first (who read or changed which patient data), filtered and paged',
      tags: ['audit'],
      access: { permission: 'audit:read' },
      query: z.strictObject({
        patient: z.string().min(1).max(64).optional(),
        user: z.string().min(1).max(128).optional(),
        outcome: z.enum(['success', 'failure', 'denied']).optional(),
        from: instant('from').optional(),
        to: instant('to').optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
        cursor: z
          .string()
          .regex(new RegExp(cursorPattern))
          .optional()
          .meta({ description: 'The previous page’s nextCursor' }),
      }),
      response: { status: 200, description: 'A page of audit records', schema: auditListSchema },
      // An inverted range is well formed (the document cannot say "from ≤ to") but asks for nothing: 422.
      errors: [400, 422],
      handler: async ({ query }) => {
        if (query.from !== undefined && query.to !== undefined && query.from > query.to)
          throw new ApiError(422, 'invalid', 'from must not be after to', ['from']);
        const page = await store.list({
          ...(query.patient ? { patientId: query.patient } : {}),
          ...(query.user ? { userId: query.user } : {}),
          ...(query.outcome ? { outcome: query.outcome } : {}),
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.to !== undefined ? { to: query.to } : {}),
          ...(query.cursor ? { cursor: fromWire(query.cursor) } : {}),
          limit: query.limit,
        });
        return { body: page.nextCursor ? { ...page, nextCursor: toWire(page.nextCursor) } : page };
      },
    }),
  ];
}
