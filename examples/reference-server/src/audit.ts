/**
 * The audit trail: every read or write of patient data, recorded in an append-only store before the request answers
 * (a JSON-lines file in sandbox mode, a MySQL table in connected mode, written by group commit) and mirrored to the
 * FHIR server as AuditEvents, one FHIR `batch` Bundle per group of records, through the outbox.
 * @see https://hl7.org/fhir/R4/auditevent.html
 */
import { randomUUID } from 'node:crypto';
import type { AuditEvent, Bundle } from 'fhir/r4.js';
import { ValidationError } from '@cdss/core';
import { identifierSystems } from '@cdss/fhir-mapper';
import type { z } from 'zod';
import { auditRecordSchema } from '@cdss/client';
import { GroupCommit } from './audit/group-commit.js';
import type { FhirSync, StateTransaction } from './domain/ports.js';

/** One audit record (the API's shape, from `@cdss/client`). */
export { auditRecordSchema };
/** One audit record. */
export type AuditRecord = z.infer<typeof auditRecordSchema>;

/** What `GET /api/audit` asks for: filters (all optional, combined with AND), a page size and a cursor. */
export interface AuditQuery {
  userId?: string;
  patientId?: string;
  outcome?: AuditRecord['outcome'];
  /** Records at or after this instant (epoch ms). */
  from?: number;
  /** Records at or before this instant (epoch ms). */
  to?: number;
  /** Page size. */
  limit: number;
  /** Where the previous page ended (its `nextCursor`). */
  cursor?: string;
}

/** A page of records, newest first. */
export interface AuditPage {
  items: AuditRecord[];
  /** Present when older records match: pass it as `cursor` for the next page. */
  nextCursor?: string;
}

/**
 * Where audit records are kept: append-only, read newest first with filters and cursors.
 * Implementations: {@link createMemoryAuditStore} (tests), `FileAuditStore` (sandbox), `MySqlAuditStore` (connected).
 */
export interface AuditStore {
  /**
   * Appends records as one durable unit (one synchronised write, or one INSERT): resolves once they are.
   * @param records - the records, in order
   * @param alsoCommit - writes that must commit with them (their AuditEvents' outbox rows): run inside the store's
   *   transaction (MySQL), or once the records are durable (file, memory); its failure fails the batch
   */
  appendBatch(
    records: readonly AuditRecord[],
    alsoCommit?: (transaction: StateTransaction) => Promise<void>,
  ): Promise<void>;
  /**
   * How many `appendBatch` calls may run at once (a database commits concurrent transactions together). Absent: one
   * at a time, the next batch filling while the previous one becomes durable (a file: one synchronised write in flight).
   */
  readonly concurrentBatches?: number;
  /**
   * A page of records, newest first.
   * @throws `ValidationError` for a cursor this store did not issue
   */
  list(query: AuditQuery): Promise<AuditPage>;
  close(): Promise<void>;
}

/** Whether a record passes a query's filters. */
export function matchesQuery(record: AuditRecord, query: AuditQuery): boolean {
  if (query.userId !== undefined && record.userId !== query.userId) return false;
  if (query.patientId !== undefined && record.patientId !== query.patientId) return false;
  if (query.outcome !== undefined && record.outcome !== query.outcome) return false;
  if (query.from === undefined && query.to === undefined) return true;
  const time = Date.parse(record.time);
  return (query.from === undefined || time >= query.from) && (query.to === undefined || time <= query.to);
}

/**
 * Opaque cursors: a store's position, tagged with the store kind so one store's cursor is refused by another.
 * @param kind - a short tag of the store
 * @param parts - the position, integers
 */
export function encodeCursor(kind: string, parts: readonly number[]): string {
  return Buffer.from(`${kind}:${parts.join(':')}`).toString('base64url');
}

/**
 * The position in a cursor made by {@link encodeCursor}.
 * @throws `ValidationError` when it was not made for `kind` with `count` parts
 */
export function decodeCursor(kind: string, cursor: string, count: number): number[] {
  const [tag, ...parts] = Buffer.from(cursor, 'base64url').toString().split(':');
  const numbers = parts.map(Number);
  if (tag !== kind || numbers.length !== count || !numbers.every((n) => Number.isSafeInteger(n) && n >= 0))
    throw new ValidationError('Invalid query', [
      { path: 'cursor', message: 'not a cursor this server issued', code: 'invalid_value' },
    ]);
  return numbers;
}

/** An in-memory store (tests). */
export function createMemoryAuditStore(): AuditStore & { records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  return {
    records,
    async appendBatch(batch, alsoCommit) {
      records.push(...batch);
      await alsoCommit?.({});
    },
    async list(query) {
      const end = query.cursor ? (decodeCursor('m', query.cursor, 1)[0] as number) : records.length;
      const items: AuditRecord[] = [];
      for (let i = Math.min(end, records.length) - 1; i >= 0; i--) {
        const record = records[i] as AuditRecord;
        if (!matchesQuery(record, query)) continue;
        if (items.length === query.limit) return { items, nextCursor: encodeCursor('m', [i + 1]) };
        items.push(record);
      }
      return { items };
    },
    async close() {},
  };
}

/** Options of {@link AuditTrail}. */
export interface AuditTrailOptions {
  store: AuditStore;
  /**
   * Called with each group of records as the store writes them, in its transaction when it has one, before their
   * requests answer (queues their AuditEvents in the outbox). A failure fails the group's requests, as the store's
   * would.
   */
  mirror?: (records: AuditRecord[], transaction: StateTransaction) => Promise<void>;
  /** Most records per group. Default 500. */
  maxBatch?: number;
  /** Called with the size of each group once it is durable (metrics). */
  onCommit?: (records: number) => void;
}

/**
 * The write side of the audit trail: records of concurrent requests are written together (group commit), and each
 * `append` resolves only when its group is durable, so a request answers only after its record is stored.
 */
export class AuditTrail {
  private readonly commits: GroupCommit<AuditRecord>;

  constructor(private readonly options: AuditTrailOptions) {
    const { store, mirror, onCommit } = options;
    this.commits = new GroupCommit(
      async (records) => {
        await store.appendBatch(records, mirror ? (transaction) => mirror(records, transaction) : undefined);
        onCommit?.(records.length);
      },
      { maxBatch: options.maxBatch, maxInFlight: store.concurrentBatches },
    );
  }

  /**
   * Records one entry.
   * @returns resolves when it is durable; rejects when it could not be stored
   */
  append(record: AuditRecord): Promise<void> {
    return this.commits.add(record);
  }

  /** The store, for reads. */
  get store(): AuditStore {
    return this.options.store;
  }

  /** Waits for the records in flight, then closes the store. */
  async close(): Promise<void> {
    await this.commits.settled();
    await this.options.store.close();
  }
}

/** Builds a record with id and time. */
export function newAuditRecord(fields: Omit<AuditRecord, 'id' | 'time'>, now = new Date()): AuditRecord {
  return { id: randomUUID(), time: now.toISOString(), ...fields };
}

const ACTION_CODES: Record<AuditRecord['action'], 'C' | 'R' | 'U' | 'D' | 'E'> = {
  read: 'R',
  search: 'E',
  create: 'C',
  update: 'U',
  request: 'C',
  cancel: 'U',
  review: 'U',
  'report-result': 'C',
};

/**
 * The FHIR AuditEvent of a record (DICOM/HL7 "rest" event type, the action as C/R/U/D/E), with an id derived from
 * the record's, so writing it twice leaves one resource.
 * @param record - the audit record
 * @param site - the OpenEMR site (part of the patient identifier system)
 */
export function toAuditEvent(record: AuditRecord, site = 'default'): AuditEvent & { id: string } {
  return {
    resourceType: 'AuditEvent',
    id: `audit-${record.id}`,
    type: {
      system: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
      code: 'rest',
      display: 'RESTful Operation',
    },
    action: ACTION_CODES[record.action],
    recorded: record.time,
    outcome: record.outcome === 'success' ? '0' : record.outcome === 'denied' ? '4' : '8',
    agent: [
      {
        who: { identifier: { system: 'urn:cdss:user', value: record.userId }, display: record.userName },
        requestor: true,
        role: record.roles.map((role) => ({ text: role })),
      },
    ],
    source: { observer: { display: 'CDSS reference server' } },
    // Logical references (by our identifiers): the FHIR server's own resource ids differ from OpenEMR's uuids.
    entity: [
      {
        name: record.resource,
        ...(record.patientId
          ? {
              what: {
                type: 'Patient',
                identifier: { system: identifierSystems(site).patientUuid, value: record.patientId },
              },
            }
          : { what: { display: record.resource } }),
      },
    ],
    extension: [
      { url: 'urn:cdss:request-id', valueString: record.requestId },
      { url: 'urn:cdss:audit-record-id', valueString: record.id },
    ],
  };
}

/**
 * One FHIR `batch` Bundle writing the AuditEvents of some records, each a PUT under its own id: entries succeed or
 * fail independently, and sending the Bundle again changes nothing.
 * @param records - the records
 * @param site - the OpenEMR site
 * @see https://hl7.org/fhir/R4/http.html#transaction
 */
export function auditEventBatch(records: readonly AuditRecord[], site = 'default'): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'batch',
    entry: records.map((record) => {
      const event = toAuditEvent(record, site);
      return { resource: event, request: { method: 'PUT', url: `AuditEvent/${event.id}` } };
    }),
  };
}

/** Most AuditEvents in one FHIR batch Bundle (a bigger group of records becomes several Bundles). */
export const AUDIT_EVENTS_PER_BUNDLE = 100;

/**
 * An {@link AuditTrailOptions.mirror} that queues each group's AuditEvents in the outbox as batch Bundles.
 * @param fhir - the FHIR sync port
 * @param site - the OpenEMR site
 */
export function mirrorToFhir(
  fhir: FhirSync,
  site = 'default',
): (records: AuditRecord[], transaction: StateTransaction) => Promise<void> {
  return async (records, transaction) => {
    for (let i = 0; i < records.length; i += AUDIT_EVENTS_PER_BUNDLE)
      await fhir.enqueue(
        'audit-events',
        auditEventBatch(records.slice(i, i + AUDIT_EVENTS_PER_BUNDLE), site),
        transaction,
      );
  };
}
