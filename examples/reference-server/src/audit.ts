/**
 * The audit trail: every read or write of patient data, recorded in an append-only store (a JSON-lines file in
 * sandbox mode) and mirrored to the FHIR server as an AuditEvent through the outbox.
 * @see https://hl7.org/fhir/R4/auditevent.html
 */
import { randomUUID } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditEvent } from 'fhir/r4.js';
import { identifierSystems } from '@cdss/fhir-mapper';
import type { z } from 'zod';
import { auditRecordSchema } from '@cdss/client';

/** One audit record (the API's shape, from `@cdss/client`). */
export { auditRecordSchema };
/** One audit record. */
export type AuditRecord = z.infer<typeof auditRecordSchema>;

/** An append-only audit store. */
export interface AuditStore {
  append(record: AuditRecord): Promise<void>;
  /** Newest first. */
  list(filter?: { patientId?: string; userId?: string; limit?: number }): Promise<AuditRecord[]>;
}

function filterRecords(
  records: AuditRecord[],
  filter: { patientId?: string; userId?: string; limit?: number } = {},
): AuditRecord[] {
  return records
    .filter(
      (r) => (!filter.patientId || r.patientId === filter.patientId) && (!filter.userId || r.userId === filter.userId),
    )
    .reverse()
    .slice(0, filter.limit ?? 100);
}

/** An in-memory store (tests). */
export function createMemoryAuditStore(): AuditStore & { records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  return {
    records,
    async append(record) {
      records.push(record);
    },
    async list(filter) {
      return filterRecords(records, filter);
    },
  };
}

/**
 * A JSON-lines file store: one record per line, only ever appended to.
 * @param path - the file
 */
export function createFileAuditStore(path: string): AuditStore {
  let ready: Promise<unknown> | undefined;
  return {
    async append(record) {
      ready ??= mkdir(dirname(path), { recursive: true });
      await ready;
      await appendFile(path, `${JSON.stringify(record)}\n`, { encoding: 'utf8', mode: 0o600 });
    },
    async list(filter) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
      const records = text
        .split('\n')
        .filter(Boolean)
        .flatMap((line) => {
          const parsed = auditRecordSchema.safeParse(JSON.parse(line));
          return parsed.success ? [parsed.data] : [];
        });
      return filterRecords(records, filter);
    },
  };
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
 * The FHIR AuditEvent of a record (DICOM/HL7 "rest" event type, the action as C/R/U/D/E).
 * @param record - the audit record
 * @param site - the OpenEMR site (part of the patient identifier system)
 */
export function toAuditEvent(record: AuditRecord, site = 'default'): AuditEvent {
  return {
    resourceType: 'AuditEvent',
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
