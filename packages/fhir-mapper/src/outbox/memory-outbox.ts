/**
 * In-memory outbox for the sandbox and tests: same semantics as the MySQL one, lost with the process.
 * @packageDocumentation
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { parseInput } from '../util.js';
import {
  defaultKey,
  fhirWriteSchema,
  type DeadLetter,
  type EnqueueOptions,
  type FhirWrite,
  type OutboxItem,
  type OutboxStats,
  type SyncOutbox,
} from './types.js';

interface Row extends OutboxItem {
  claimedUntil: number;
}

/** An outbox kept in memory. */
export class MemoryOutbox implements SyncOutbox {
  private seq = 0;
  private readonly pending = new Map<string, Row>();
  private readonly dead: DeadLetter[] = [];
  private delivered = 0;

  /** @param clock - `now()` for `createdAt` (default `Date.now`) */
  constructor(private readonly clock: { now(): number } = { now: () => Date.now() }) {}

  async enqueue(write: FhirWrite, options: EnqueueOptions = {}): Promise<OutboxItem> {
    const w = parseInput(fhirWriteSchema, write, 'FHIR write');
    const now = this.clock.now();
    const row: Row = {
      id: String(++this.seq).padStart(12, '0'),
      key: options.key ?? defaultKey(w),
      write: structuredClone(w),
      attempts: 0,
      nextAttemptAt: now,
      createdAt: now,
      claimedUntil: 0,
    };
    this.pending.set(row.id, row);
    return strip(row);
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    const heads = new Map<string, Row>();
    for (const row of this.pending.values()) {
      const head = heads.get(row.key);
      if (!head || row.id < head.id) heads.set(row.key, row);
    }
    const due = [...heads.values()]
      .filter((r) => r.nextAttemptAt <= now && r.claimedUntil <= now)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, limit);
    for (const r of due) r.claimedUntil = now + leaseMs;
    return due.map(strip);
  }

  async markDelivered(id: string): Promise<void> {
    if (this.pending.delete(id)) this.delivered++;
  }

  async markFailed(id: string, error: string, nextAttemptAt: number): Promise<void> {
    const r = this.pending.get(id);
    if (!r) return;
    r.attempts++;
    r.lastError = error;
    r.nextAttemptAt = nextAttemptAt;
    r.claimedUntil = 0;
  }

  async markDead(id: string, error: string, outcome: OperationOutcome | undefined, now: number): Promise<void> {
    const r = this.pending.get(id);
    if (!r) return;
    this.pending.delete(id);
    this.dead.push({ ...strip(r), attempts: r.attempts + 1, lastError: error, outcome, deadAt: now });
  }

  async deadLetters(limit = 1000): Promise<DeadLetter[]> {
    return this.dead.slice(0, limit).map((d) => structuredClone(d));
  }

  async stats(): Promise<OutboxStats> {
    let oldest: number | undefined;
    for (const row of this.pending.values())
      oldest = oldest === undefined ? row.createdAt : Math.min(oldest, row.createdAt);
    return { pending: this.pending.size, delivered: this.delivered, dead: this.dead.length, oldestPendingAt: oldest };
  }
}

function strip(row: Row): OutboxItem {
  const { claimedUntil: _c, ...item } = row;
  return structuredClone(item);
}
