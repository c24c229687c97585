/**
 * Records every read and write of patient data: who, role, patient, action, resource, outcome, request id and time.
 * Audit is fail-closed: if the record cannot be written, the request fails rather than serve PHI unaudited.
 */
import type { Principal } from '../auth/tokens.js';
import { newAuditRecord, toAuditEvent, type AuditRecord, type AuditStore } from '../audit.js';
import type { ServerMetrics } from '../metrics.js';
import type { FhirSync } from './ports.js';

/** What is being audited; `patientId` may be filled in by the operation once known (e.g. after a create). */
export interface AuditContext {
  principal: Principal;
  requestId: string;
  action: AuditRecord['action'];
  resource: string;
  patientId?: string;
}

/** Wraps operations with audit records. */
export interface Auditor {
  /**
   * Runs `operation` and records its outcome (success, or failure with the error rethrown).
   * @param context - who does what to which resource
   * @param operation - the work; it may set `context.patientId`
   */
  around<T>(context: AuditContext, operation: (context: AuditContext) => Promise<T>): Promise<T>;
  /** Records a refused attempt (the policy denied the caller's role). */
  denied(context: AuditContext): Promise<void>;
}

/**
 * Creates the auditor.
 * @param store - the append-only store
 * @param fhir - where AuditEvents are mirrored (through the outbox)
 * @param metrics - counts records by action and outcome
 * @param site - the OpenEMR site, part of the patient identifier system in AuditEvents
 */
export function createAuditor(store: AuditStore, fhir: FhirSync, metrics: ServerMetrics, site = 'default'): Auditor {
  async function write(context: AuditContext, outcome: AuditRecord['outcome']): Promise<void> {
    const record = newAuditRecord({
      userId: context.principal.id,
      userName: context.principal.name,
      roles: context.principal.roles,
      ...(context.patientId ? { patientId: context.patientId } : {}),
      action: context.action,
      resource: context.resource,
      outcome,
      requestId: context.requestId,
    });
    await store.append(record);
    metrics.auditEvents.inc({ action: record.action, outcome });
    await fhir.enqueue('audit-event', toAuditEvent(record, site));
  }
  return {
    denied: (context) => write(context, 'denied'),
    async around(context, operation) {
      let result: Awaited<ReturnType<typeof operation>>;
      try {
        result = await operation(context);
      } catch (error) {
        await write(context, 'failure');
        throw error;
      }
      await write(context, 'success');
      return result;
    },
  };
}
