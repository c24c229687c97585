/**
 * Drains a {@link SyncOutbox} into a FHIR server through a {@link FhirAdapter}: retryable failures
 * (no response, timeouts, 5xx, 429, conflicts) are retried with exponential backoff and jitter until
 * the server accepts the write; a write it rejects as invalid (400/422, or a conditional write that
 * matches several resources) goes to the dead letters with the OperationOutcome.
 * @packageDocumentation
 */
import { HttpError, noopLogger, systemClock, type Clock, type Logger } from '@cdss/core';
import type { FhirAdapter } from '../adapter/fhir-adapter.js';
import { FhirConflictError, FhirInvalidResourceError, FhirServerError } from '../adapter/errors.js';
import type { BundleEntryRequest } from 'fhir/r4.js';
import type { OutboxItem, SyncOutbox } from './types.js';

/** Options of {@link OutboxProcessor}. */
export interface OutboxProcessorOptions {
  outbox: SyncOutbox;
  adapter: FhirAdapter;
  /** Items claimed per round. Default 50. */
  batchSize?: number;
  /** Deliveries in flight at once. Default 8. */
  concurrency?: number;
  /** Backoff of the first retry; doubles per attempt. Default 500 ms. */
  baseDelayMs?: number;
  /** Backoff cap. Default 60 000 ms. */
  maxDelayMs?: number;
  /** How long a claim hides an item from other processors. Default 60 000 ms. */
  leaseMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Jitter source in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Most entries in one request when claimed `batch` writes are sent together (see {@link OutboxProcessor}).
   * Default 500; 1 sends each write on its own. Each request costs the sender a fixed share (fhir-kit-client's fetch:
   * about 0.5–1 ms of CPU here) besides its entries' bytes, so fewer, larger requests spare the server's thread.
   */
  maxMergedEntries?: number;
}

/** What one round did. */
export interface DrainResult {
  claimed: number;
  delivered: number;
  failed: number;
  dead: number;
}

/** For logs: the error class and status only (no server diagnostics, which can quote patient data). */
function brief(error: unknown): string {
  if (HttpError.isInstance(error)) return `${error.name} ${error.status ?? 'no response'}`;
  return error instanceof Error ? error.name : 'Error';
}

/** For the outbox row (stored beside the payload it concerns): class, status and the server's diagnostics. */
function describe(error: unknown): string {
  if (FhirServerError.isInstance(error)) {
    const diag = error.outcome?.issue?.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; ');
    return `${error.name} ${error.status ?? 'no response'}${diag ? `: ${diag.slice(0, 500)}` : ''}`;
  }
  return brief(error);
}

/**
 * Statuses that reject the write itself, so a retry cannot succeed: bad request, not found / gone,
 * method not allowed, payload too large, unsupported media type, unprocessable. 401/403 (credentials
 * can be fixed), 408, 409, 412 (version), 429 and 5xx are retried.
 */
const REJECTED_STATUSES = new Set([400, 404, 405, 410, 413, 415, 422]);

/** Whether the server rejected the write as invalid (dead-letter) rather than failed to take it (retry). */
export function isRejection(error: unknown): boolean {
  if (error instanceof FhirInvalidResourceError) return true;
  if (error instanceof FhirConflictError) return error.kind === 'multiple-matches';
  return FhirServerError.isInstance(error) && error.status !== undefined && REJECTED_STATUSES.has(error.status);
}

/** The requests of a batch write's entries (from its text when the outbox keeps it: the write is not parsed). */
function batchRequests(item: OutboxItem): ReadonlyArray<BundleEntryRequest | undefined> | undefined {
  if (item.batchText) return item.batchText.requests;
  const w = item.write;
  return w.kind === 'batch' ? (w.bundle.entry ?? []).map((e) => e.request) : undefined;
}

/**
 * Delivers outbox items.
 *
 * Claimed `batch` writes on their first attempt are sent together, as one batch Bundle of up to
 * {@link OutboxProcessorOptions.maxMergedEntries} entries, when no two of them write the same URL: a batch's entries
 * may not depend on each other, and writes of different keys are unordered, so this changes nothing but the number
 * of requests (a group of AuditEvents per audited group of requests otherwise costs a request of its own). When the
 * merged request fails, each of its writes is sent again on its own, so that each gets its own outcome (delivered,
 * retried or dead-lettered); a retried write is always sent alone.
 * @see https://hl7.org/fhir/R4/http.html#transaction (batch: "no interdependencies between the different entries")
 */
export class OutboxProcessor {
  private readonly o: Required<Omit<OutboxProcessorOptions, 'outbox' | 'adapter'>> &
    Pick<OutboxProcessorOptions, 'outbox' | 'adapter'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<DrainResult> | undefined;

  constructor(options: OutboxProcessorOptions) {
    this.o = {
      batchSize: 50,
      concurrency: 8,
      baseDelayMs: 500,
      maxDelayMs: 60_000,
      leaseMs: 60_000,
      clock: systemClock,
      logger: noopLogger,
      random: Math.random,
      maxMergedEntries: 500,
      ...options,
    };
  }

  /** The backoff before attempt `attempts + 1`: full jitter in [cap/2, cap). */
  backoffMs(attempts: number): number {
    const cap = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.max(0, attempts - 1));
    return cap / 2 + (cap / 2) * this.o.random();
  }

  /** Claims due items once and tries each. Concurrent calls share one round. */
  drainOnce(): Promise<DrainResult> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Rounds until nothing is pending, or `timeoutMs` passes (items then stay pending for later).
   * @returns the totals, and whether the outbox is empty
   */
  async drainUntilEmpty(timeoutMs = 60_000, idleSleepMs = 50): Promise<DrainResult & { empty: boolean }> {
    const total: DrainResult = { claimed: 0, delivered: 0, failed: 0, dead: 0 };
    const deadline = this.o.clock.now() + timeoutMs;
    for (;;) {
      const r = await this.drainOnce();
      total.claimed += r.claimed;
      total.delivered += r.delivered;
      total.failed += r.failed;
      total.dead += r.dead;
      const { pending } = await this.o.outbox.stats();
      if (pending === 0) return { ...total, empty: true };
      if (this.o.clock.now() >= deadline) return { ...total, empty: false };
      if (r.claimed === 0) await this.o.clock.sleep(idleSleepMs);
    }
  }

  /**
   * Drains in the background until {@link OutboxProcessor.stop}: a round every `intervalMs`, and the next round at
   * once after one that claimed a full batch, so that a backlog drains at the FHIR server's pace rather than at
   * `batchSize` writes per interval (which a busy server's audit trail alone outgrows). Items that fail are not due
   * again until their backoff ends, so a failing server does not make this loop spin.
   */
  start(intervalMs = 1000): void {
    if (this.timer) return;
    const tick = (): void => {
      let full = false;
      this.drainOnce()
        .then((r) => (full = r.claimed >= this.o.batchSize))
        .catch((e: unknown) => this.o.logger.error({ err: brief(e) }, 'outbox round failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, full ? 0 : intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stops the background loop and waits for the round in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async round(): Promise<DrainResult> {
    const now = this.o.clock.now();
    const items = await this.o.outbox.claimDue(now, this.o.batchSize, this.o.leaseMs);
    const result: DrainResult = { claimed: items.length, delivered: 0, failed: 0, dead: 0 };
    const units = this.mergeable(items);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < units.length) {
        const unit = units[next++] as OutboxItem[];
        const outcomes =
          unit.length === 1 ? [await this.deliver(unit[0] as OutboxItem)] : await this.deliverMerged(unit);
        for (const r of outcomes) result[r]++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, units.length) }, worker));
    return result;
  }

  /** The claimed items in delivery units: first-attempt batch writes grouped (see the class), the rest alone. */
  private mergeable(items: readonly OutboxItem[]): OutboxItem[][] {
    const units: OutboxItem[][] = [];
    let open: { items: OutboxItem[]; entries: number; urls: Set<string> } | undefined;
    for (const item of items) {
      const entries = item.attempts === 0 ? batchRequests(item) : undefined;
      if (!entries || entries.length === 0 || entries.length >= this.o.maxMergedEntries) {
        units.push([item]);
        continue;
      }
      const urls = entries.map((request) => request?.url ?? '');
      if (!open || open.entries + entries.length > this.o.maxMergedEntries || urls.some((url) => open!.urls.has(url))) {
        open = { items: [], entries: 0, urls: new Set() };
        units.push(open.items);
      }
      open.items.push(item);
      open.entries += entries.length;
      for (const url of urls) open.urls.add(url);
    }
    return units;
  }

  /**
   * Sends batch writes as one Bundle (from the outbox's JSON texts when it keeps them: nothing parsed or serialised
   * again); when that fails, each on its own.
   */
  private async deliverMerged(items: readonly OutboxItem[]): Promise<Array<'delivered' | 'failed' | 'dead'>> {
    // Only the entries' outcomes matter here: the resources need not come back.
    const minimal = { returnMinimal: true };
    try {
      const texts = items.map((item) => item.batchText);
      if (texts.every((text) => text !== undefined)) await this.o.adapter.batchText(texts, minimal);
      else {
        const entry = items.flatMap((item) => (item.write.kind === 'batch' ? (item.write.bundle.entry ?? []) : []));
        await this.o.adapter.batch({ resourceType: 'Bundle', type: 'batch', entry }, minimal);
      }
    } catch (error) {
      this.o.logger.debug(
        { items: items.length, err: brief(error) },
        'merged FHIR batch failed: sending its writes one by one',
      );
      const outcomes: Array<'delivered' | 'failed' | 'dead'> = [];
      for (const item of items) outcomes.push(await this.deliver(item));
      return outcomes;
    }
    // All at once: against MySQL one round trip each, which need not wait for one another.
    await Promise.all(items.map((item) => this.o.outbox.markDelivered(item.id)));
    return items.map(() => 'delivered' as const);
  }

  private async deliver(item: OutboxItem): Promise<'delivered' | 'failed' | 'dead'> {
    const { adapter } = this.o;
    try {
      // A batch the outbox keeps as text goes as it is; reading `write` would parse it.
      const w = item.batchText ?? item.write;
      if ('json' in w) await adapter.batchText([w], { returnMinimal: true });
      else if (w.kind === 'upsert') await adapter.upsert(w.resource, w.identifier);
      else if (w.kind === 'create-if-none-exist') await adapter.createIfNoneExist(w.resource, w.identifier);
      else if (w.kind === 'batch') await adapter.batch(w.bundle, { returnMinimal: true });
      else await adapter.transaction(w.bundle);
      await this.o.outbox.markDelivered(item.id);
      return 'delivered';
    } catch (error) {
      const invalid = isRejection(error);
      if (invalid) {
        this.o.logger.warn({ item: item.id, err: brief(error) }, 'FHIR write rejected as invalid: dead-lettered');
        await this.o.outbox.markDead(item.id, describe(error), (error as FhirServerError).outcome, this.o.clock.now());
        return 'dead';
      }
      const delay = this.backoffMs(item.attempts + 1);
      this.o.logger.debug(
        { item: item.id, attempt: item.attempts + 1, delayMs: Math.round(delay), err: brief(error) },
        'FHIR write failed, will retry',
      );
      await this.o.outbox.markFailed(item.id, describe(error), this.o.clock.now() + delay);
      return 'failed';
    }
  }
}
