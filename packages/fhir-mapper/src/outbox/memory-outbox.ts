/**
 * In-memory outbox for the sandbox and tests: same semantics as the MySQL one, lost with the process.
 *
 * Every operation costs O(log n) or less at any backlog: writes wait in one FIFO per key; only the head of each key
 * is scheduled, in a heap by the time it may next be tried (its backoff or its lease) and, once that time has come,
 * in a heap by enqueue order. A heap entry made stale by a later change of its row is skipped when it comes out
 * (each row carries a generation number).
 * @packageDocumentation
 */
import type { BundleEntryRequest, OperationOutcome } from 'fhir/r4.js';
import { parseInput } from '../util.js';
import { MinHeap } from './min-heap.js';
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

interface Row extends Omit<OutboxItem, 'write'> {
  /**
   * The write as JSON text: the outbox's own copy, whatever the caller does with theirs later; each claim parses
   * its own object from it (as a database-backed outbox does), so a claimer cannot change what a retry sends.
   */
  json: string;
  /** A non-empty batch write's entries: where their text lies in `json`, and their requests. */
  batch?: { start: number; end: number; requests: readonly BundleEntryRequest[] } | undefined;
  seq: number;
  claimedUntil: number;
  /** Bumped on every change of the row's schedule: heap entries of older generations are stale. */
  generation: number;
}

/** A row as scheduled at some generation, and (in the timed heap) from when it may be tried. */
interface Scheduled {
  row: Row;
  generation: number;
  at: number;
}

/** The pending rows of one key, oldest first (`rows[first]` is the head). */
interface KeyQueue {
  rows: Row[];
  first: number;
}

/** An outbox kept in memory. */
export class MemoryOutbox implements SyncOutbox {
  private seq = 0;
  /** Pending rows by id, in enqueue order (a Map keeps insertion order): the first is the oldest. */
  private readonly pending = new Map<string, Row>();
  private readonly queues = new Map<string, KeyQueue>();
  /** Heads of keys, by the time they may be tried. */
  private readonly timed = new MinHeap<Scheduled>((a, b) => a.at < b.at || (a.at === b.at && a.row.seq < b.row.seq));
  /** Heads of keys whose time has come, in enqueue order. */
  private readonly due = new MinHeap<Scheduled>((a, b) => a.row.seq < b.row.seq);
  private readonly dead: DeadLetter[] = [];
  private delivered = 0;

  /** @param clock - `now()` for `createdAt` (default `Date.now`) */
  constructor(private readonly clock: { now(): number } = { now: () => Date.now() }) {}

  async enqueue(write: FhirWrite, options: EnqueueOptions = {}): Promise<OutboxItem> {
    const w = parseInput(fhirWriteSchema, write, 'FHIR write');
    const now = this.clock.now();
    const seq = ++this.seq;
    const row: Row = {
      id: String(seq).padStart(12, '0'),
      key: options.key ?? defaultKey(w),
      // Serialising is the cheapest deep copy of JSON data (a fifth of a frozen copy's time for a group of
      // AuditEvents, which every audited request's group enqueues).
      ...serialise(w),
      attempts: 0,
      nextAttemptAt: now,
      createdAt: now,
      seq,
      claimedUntil: 0,
      generation: 0,
    };
    this.pending.set(row.id, row);
    let queue = this.queues.get(row.key);
    if (!queue) this.queues.set(row.key, (queue = { rows: [], first: 0 }));
    queue.rows.push(row);
    if (queue.rows.length - queue.first === 1) this.schedule(row);
    const { id, key, attempts, nextAttemptAt, createdAt } = row;
    return { id, key, write: w, attempts, nextAttemptAt, createdAt };
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    for (let next = this.timed.peek(); next && next.at <= now; next = this.timed.peek()) {
      this.timed.pop();
      if (this.current(next)) this.due.push(next);
    }
    const claimed: OutboxItem[] = [];
    const later: Scheduled[] = [];
    while (claimed.length < limit && this.due.size > 0) {
      const next = this.due.pop() as Scheduled;
      if (!this.current(next)) continue;
      const { row } = next;
      // Due by an earlier `now` than this one (callers' clocks may differ): not yet.
      if (availableAt(row) > now) {
        later.push(next);
        continue;
      }
      row.claimedUntil = now + leaseMs;
      this.schedule(row); // comes back when the lease ends, unless marked before
      claimed.push(item(row));
    }
    for (const scheduled of later) this.timed.push(scheduled);
    return claimed;
  }

  async markDelivered(id: string): Promise<void> {
    if (this.remove(id)) this.delivered++;
  }

  async markFailed(id: string, error: string, nextAttemptAt: number): Promise<void> {
    const r = this.pending.get(id);
    if (!r) return;
    r.attempts++;
    r.lastError = error;
    r.nextAttemptAt = nextAttemptAt;
    r.claimedUntil = 0;
    if (this.isHead(r)) this.schedule(r);
  }

  async markDead(id: string, error: string, outcome: OperationOutcome | undefined, now: number): Promise<void> {
    const r = this.remove(id);
    if (!r) return;
    const { batchText: _text, ...dead } = item(r);
    this.dead.push({ ...dead, attempts: r.attempts + 1, lastError: error, outcome, deadAt: now });
  }

  async deadLetters(limit = 1000): Promise<DeadLetter[]> {
    return this.dead.slice(0, limit).map((d) => structuredClone(d));
  }

  async stats(): Promise<OutboxStats> {
    const oldest = this.pending.values().next().value;
    return {
      pending: this.pending.size,
      delivered: this.delivered,
      dead: this.dead.length,
      oldestPendingAt: oldest?.createdAt,
    };
  }

  /** (Re)schedules a head row at its current time, making its earlier heap entries stale. */
  private schedule(row: Row): void {
    row.generation++;
    this.timed.push({ row, generation: row.generation, at: availableAt(row) });
  }

  private current(scheduled: Scheduled): boolean {
    return scheduled.generation === scheduled.row.generation && this.pending.has(scheduled.row.id);
  }

  private isHead(row: Row): boolean {
    const queue = this.queues.get(row.key);
    return queue?.rows[queue.first] === row;
  }

  /** Takes a row out of the pending set and its key's queue; schedules the key's next row when it was the head. */
  private remove(id: string): Row | undefined {
    const row = this.pending.get(id);
    if (!row) return undefined;
    this.pending.delete(id);
    row.generation++;
    const queue = this.queues.get(row.key) as KeyQueue;
    if (queue.rows[queue.first] !== row) {
      // Not the head (callers mark claimed heads, so this is rare): out of the middle of its queue.
      queue.rows.splice(queue.rows.indexOf(row, queue.first), 1);
      return row;
    }
    queue.first++;
    if (queue.first === queue.rows.length) this.queues.delete(row.key);
    else {
      // Compact now and then, so a long-lived key's queue does not keep delivered rows.
      if (queue.first > 64 && queue.first * 2 > queue.rows.length) {
        queue.rows = queue.rows.slice(queue.first);
        queue.first = 0;
      }
      this.schedule(queue.rows[queue.first] as Row);
    }
    return row;
  }
}

function availableAt(row: Row): number {
  return Math.max(row.nextAttemptAt, row.claimedUntil);
}

/**
 * A write as JSON text. A non-empty batch's entries are written last, as one run of text whose place is recorded, so
 * that a claim can hand them out as text (what the processor sends when it merges batches) without parsing them.
 */
function serialise(w: FhirWrite): Pick<Row, 'json' | 'batch'> {
  if (w.kind !== 'batch' || !w.bundle.entry?.length) return { json: JSON.stringify(w) };
  const { entry, ...shell } = w.bundle;
  // The schema keeps `kind` and `bundle` only, and a Bundle always has its resourceType: the shell ends in `}}`.
  const head = `${JSON.stringify({ kind: w.kind, bundle: shell }).slice(0, -2)},"entry":`;
  const entries = JSON.stringify(entry);
  return {
    json: `${head}${entries}}}`,
    batch: {
      start: head.length + 1,
      end: head.length + entries.length - 1,
      requests: entry.map((e) => Object.freeze({ ...e.request }) as BundleEntryRequest),
    },
  };
}

/**
 * The public fields of a row, in a new object, with a write of its own. The write is parsed when it is first read: a
 * batch the processor sends as text (`batchText`) is never parsed.
 */
function item(row: Row): OutboxItem {
  const { seq: _s, claimedUntil: _c, generation: _g, json, batch, ...rest } = row;
  let write: FhirWrite | undefined;
  const out = {
    ...rest,
    ...(batch ? { batchText: { json: json.slice(batch.start, batch.end), requests: batch.requests } } : {}),
  } as OutboxItem;
  Object.defineProperty(out, 'write', {
    enumerable: true,
    configurable: true,
    get: () => (write ??= JSON.parse(json) as FhirWrite),
    set: (value: FhirWrite) => {
      write = value;
    },
  });
  return out;
}
