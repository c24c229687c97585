/**
 * The sync outbox: FHIR writes recorded durably before they are attempted, retried with backoff until
 * the server accepts them, and dead-lettered (with the server's OperationOutcome) when it rejects them
 * as invalid. Writes that share a key (one patient, one analysis) are delivered in the order they were
 * enqueued.
 * @packageDocumentation
 */
import { z } from 'zod';
import type { Bundle, BundleEntryRequest, OperationOutcome, Resource } from 'fhir/r4.js';

const identifierSchema = z.object({ system: z.string().min(1), value: z.string().min(1) });
const resourceSchema = z.custom<Resource>(
  (v) => typeof v === 'object' && v !== null && typeof (v as { resourceType?: unknown }).resourceType === 'string',
  'Expected a FHIR resource',
);

/** A FHIR write the outbox can deliver. All are idempotent, so a retry can never duplicate. */
export const fhirWriteSchema = z.discriminatedUnion('kind', [
  /** Conditional update keyed by an identifier (creates when there is no match). */
  z.object({ kind: z.literal('upsert'), resource: resourceSchema, identifier: identifierSchema }),
  /** Conditional create keyed by an identifier (leaves an existing match alone). */
  z.object({ kind: z.literal('create-if-none-exist'), resource: resourceSchema, identifier: identifierSchema }),
  /** A transaction whose entries are all conditional (as `analysisToTransaction` builds them). */
  z.object({
    kind: z.literal('transaction'),
    bundle: z.custom<Bundle>(
      (v) => (v as Bundle | undefined)?.resourceType === 'Bundle' && (v as Bundle).type === 'transaction',
      'Expected a transaction Bundle',
    ),
  }),
  /** A batch whose entries are all idempotent (e.g. PUTs by id): one request for many independent writes. */
  z.object({
    kind: z.literal('batch'),
    bundle: z.custom<Bundle>(
      (v) => (v as Bundle | undefined)?.resourceType === 'Bundle' && (v as Bundle).type === 'batch',
      'Expected a batch Bundle',
    ),
  }),
]);

/** A FHIR write. */
export type FhirWrite = z.infer<typeof fhirWriteSchema>;

/** A `batch` write's entries as an outbox stored them: the JSON text, and each entry's `request`. */
export interface BatchEntriesText {
  /** The entries' JSON texts, comma-separated: the inside of the Bundle's `entry` array. */
  json: string;
  /** Each entry's `request` element, in order. */
  requests: readonly BundleEntryRequest[];
}

/** An outbox entry. */
export interface OutboxItem {
  /** Unique, increasing in enqueue order. */
  id: string;
  /** Writes with one key are delivered in order (default: the write's identifier). */
  key: string;
  write: FhirWrite;
  /** Delivery attempts so far. */
  attempts: number;
  /** Epoch ms before which the item is not attempted again. */
  nextAttemptAt: number;
  createdAt: number;
  /** The last failure, without PHI (error class, status, server diagnostics). */
  lastError?: string | undefined;
  /**
   * A non-empty `batch` write's entries as the outbox keeps them (an outbox that stores writes as JSON text, e.g.
   * {@link MemoryOutbox}): a deliverer may send them as they are instead of serialising `write` again.
   */
  batchText?: BatchEntriesText | undefined;
}

/** A write the server rejected as invalid: it will not be retried. */
export interface DeadLetter extends OutboxItem {
  /** The server's OperationOutcome, when it sent one. */
  outcome?: OperationOutcome | undefined;
  deadAt: number;
}

/** Counts by state. */
export interface OutboxStats {
  pending: number;
  delivered: number;
  dead: number;
  /** When the oldest pending write was queued (ms since the epoch); undefined when nothing is pending. */
  oldestPendingAt?: number | undefined;
}

/**
 * A connection with an open transaction (mysql2's `PoolConnection` after `beginTransaction()`): the transactional
 * outbox pattern, where the write is recorded in the same transaction as the state change that implies it.
 */
export interface OutboxConnection {
  execute(sql: string, values: (string | number | null)[]): Promise<unknown>;
}

/** Options of {@link SyncOutbox.enqueue}. */
export interface EnqueueOptions {
  /** Writes with one key are delivered in order (default: derived from the write's identifier). */
  key?: string;
  /**
   * Records the write inside this open transaction, so it commits or rolls back with the caller's change (the MySQL
   * outbox; the memory outbox has no transactions and records at once).
   */
  connection?: OutboxConnection;
}

/** Storage of the outbox. Implementations: {@link MemoryOutbox}, {@link MySqlOutbox}. */
export interface SyncOutbox {
  /**
   * Records a write. When the promise resolves the write is durable (for MySQL: committed).
   * @param write - the write
   * @param options - `key` orders writes (default: derived from the write's identifier); `connection` records the
   *   write in the caller's open transaction
   * @throws `ValidationError` (`@cdss/core`) when the write is malformed
   */
  enqueue(write: FhirWrite, options?: EnqueueOptions): Promise<OutboxItem>;
  /**
   * Claims up to `limit` due items, at most one per key (the oldest pending item of its key, and only
   * when that one is due), hiding them from other claimers for `leaseMs`.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]>;
  /** The server accepted the write. */
  markDelivered(id: string): Promise<void>;
  /** A retryable failure: try again at `nextAttemptAt`. */
  markFailed(id: string, error: string, nextAttemptAt: number): Promise<void>;
  /** The server rejected the write as invalid: move it to the dead letters. */
  markDead(id: string, error: string, outcome: OperationOutcome | undefined, now: number): Promise<void>;
  /** The dead letters, oldest first. */
  deadLetters(limit?: number): Promise<DeadLetter[]>;
  stats(): Promise<OutboxStats>;
}

/** The default ordering key of a write. */
export function defaultKey(write: FhirWrite): string {
  if (write.kind === 'transaction') {
    const first = write.bundle.entry?.find((e) => e.request?.url.includes('identifier='))?.request?.url;
    return first ? `tx:${first}` : 'tx';
  }
  if (write.kind === 'batch') return `batch:${write.bundle.entry?.[0]?.request?.url ?? ''}`;
  return `${write.resource.resourceType}|${write.identifier.system}|${write.identifier.value}`;
}
