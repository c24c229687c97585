/**
 * The {@link ChartDocuments} port over `@cdss/openemr-client`: a report is filed with `client.documents.upload`,
 * which lists the category before it sends and, after an unknown outcome (OpenEMR 8.0.0 answers a stored upload
 * with 500), lists again to find the document instead of sending it twice.
 */
import type { OpenEmrClient } from '@cdss/openemr-client';
import type { PatientRecords } from '../domain/ports.js';
import type { ChartDocuments } from './delivery.js';

/**
 * The port.
 * @param client - the OpenEMR client (a user token: the Standard API refuses system tokens)
 * @param records - the EMR port, to find the patient's numeric pid (documents are filed by pid)
 */
export function openEmrDocuments(client: OpenEmrClient, records: PatientRecords): ChartDocuments {
  return {
    async upload({ patientId, content, filename, contentType, category }) {
      const patient = await records.get(patientId);
      if (!patient?.pid) throw new Error('the patient has no pid in OpenEMR');
      const document = await client.documents.upload({ pid: patient.pid, content, filename, contentType, category });
      return { id: String(document.id), created: document.created };
    },
  };
}
