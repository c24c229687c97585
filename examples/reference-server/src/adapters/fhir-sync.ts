/**
 * The server's {@link FhirSync} port over the `@cdss/fhir-mapper` sync outbox: every FHIR write is recorded durably
 * first and delivered by the outbox processor, with conditional writes keyed by our identifiers so a retry never
 * duplicates. Patients are upserted by their OpenEMR uuid; AI reports go as transactions; audit events are PUT
 * under a client-assigned id derived from the audit record.
 */
import { identifierSystems, patientToFhir, type SyncOutbox } from '@cdss/fhir-mapper';
import type { AuditEvent, Bundle } from 'fhir/r4.js';
import type { ApiPatient } from '../api-schemas.js';
import type { FhirSync } from '../domain/ports.js';
import { toOpenEmrPatient } from './openemr.js';

/**
 * The port over an outbox.
 * @param outbox - memory (sandbox) or MySQL (connected)
 * @param site - the OpenEMR site, part of our identifier systems
 */
export function outboxFhirSync(outbox: SyncOutbox, site = 'default'): FhirSync {
  const systems = identifierSystems(site);
  return {
    async enqueue(kind, payload, transaction = {}) {
      const inTransaction = transaction.connection ? { connection: transaction.connection } : {};
      if (kind === 'patient') {
        const patient = payload as ApiPatient;
        const resource = patientToFhir(
          { ...toOpenEmrPatient(patient), uuid: patient.id, pid: patient.pid ?? '0' },
          { site },
        );
        await outbox.enqueue(
          { kind: 'upsert', resource, identifier: { system: systems.patientUuid, value: patient.id } },
          inTransaction,
        );
      } else if (kind === 'analysis-report') {
        await outbox.enqueue({ kind: 'transaction', bundle: payload as Bundle }, inTransaction);
      } else {
        const event = payload as AuditEvent;
        const recordId =
          event.extension?.find((e) => e.url === 'urn:cdss:audit-record-id')?.valueString ?? crypto.randomUUID();
        const bundle: Bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              resource: { ...event, id: `audit-${recordId}` },
              request: { method: 'PUT', url: `AuditEvent/audit-${recordId}` },
            },
          ],
        };
        await outbox.enqueue(
          { kind: 'transaction', bundle },
          { key: `AuditEvent/audit-${recordId}`, ...inTransaction },
        );
      }
    },
    async ping() {
      await outbox.stats();
    },
  };
}
