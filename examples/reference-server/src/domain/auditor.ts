/**
 * Records every read and write of patient data: who, role, patient, action, resource, outcome, request id and time.
 * Audit is fail-closed: if the record cannot be written, the request fails rather than serve PHI unaudited.
 */
import type { Principal } from '../auth/tokens.js';
import { newAuditRecord, type AuditRecord } from '../audit.js';
import type { ServerMetrics } from '../metrics.js';

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
  /**
   * Records an outcome now, with no operation around it; resolves once the record is durable. For a caller that
   * overlaps the record's commit with its own work (the DICOMweb proxy, which commits while the PACS is asked).
   * @param context - who does what to which resource
   * @param outcome - the outcome to record
   */
  record(context: AuditContext, outcome: AuditRecord['outcome']): Promise<void>;
}

/** Where the auditor writes: resolves once the record is durable (the server's `AuditTrail`). */
export interface AuditSink {
  append(record: AuditRecord): Promise<void>;
}

/**
 * Creates the auditor.
 * @param trail - the audit trail (group commit to the store, AuditEvents to FHIR)
 * @param metrics - counts records by action and outcome
 */
export function createAuditor(trail: AuditSink, metrics: ServerMetrics): Auditor {
  const counters = new Map<string, { inc(): void }>();
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
    await trail.append(record);
    const key = `${record.action}|${outcome}`;
    let counter = counters.get(key);
    if (!counter) counters.set(key, (counter = metrics.auditEvents.labels({ action: record.action, outcome })));
    counter.inc();
  }
  return {
    denied: (context) => write(context, 'denied'),
    record: write,
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
