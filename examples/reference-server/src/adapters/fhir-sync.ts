/**
 * The server's {@link FhirSync} port over the `@cdss/fhir-mapper` sync outbox: every FHIR write is recorded durably
 * first and delivered by the outbox processor, with conditional writes keyed by our identifiers so a retry never
 * duplicates. Patients are upserted by their OpenEMR uuid; AI reports go as transactions; audit events go as batch
 * Bundles of PUTs under client-assigned ids derived from the audit records.
 */
import { identifierSystems, patientToFhir, type SyncOutbox } from '@cdss/fhir-mapper';
import type { Bundle } from 'fhir/r4.js';
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
        // One outbox entry per batch; its key is unique (the first record's), so batches never wait on each other.
        const bundle = payload as Bundle;
        await outbox.enqueue(
          { kind: 'batch', bundle },
          { key: `audit-batch:${bundle.entry?.[0]?.request?.url ?? ''}`, ...inTransaction },
        );
      }
    },
    async ping() {
      await outbox.stats();
    },
  };
}
