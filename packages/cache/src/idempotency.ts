/**
 * Idempotency records: a client retry that carries the same idempotency key gets the first answer back, and the
 * upstream write is not repeated. The {@link IdempotencyStore} port and its in-memory implementation; the MySQL one
 * is in `@cdss/cache/mysql`.
 * @packageDocumentation
 */
import { z } from 'zod';
import { parseOrThrow } from './errors.js';
import { cacheKeySchema } from './types.js';

/** Schema of an idempotency key as stored (1–250 characters, no control characters). */
export const idempotencyKeySchema = cacheKeySchema;

/** Schema of a claim request (see {@link IdempotencyStore.claim}). */
export const claimInputSchema = z.object({
  /** The idempotency key. */
  key: idempotencyKeySchema,
  /** SHA-256 (hex) of the request, so a key reused for another request is detected. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/, 'fingerprint must be a hex SHA-256'),
  /** Who claims (an instance-unique id per write). */
  owner: z.string().min(1).max(64),
  /** Current time, epoch milliseconds. */
  now: z.number().int().nonnegative(),
  /** How long the claim holds; after it, another request may take the key over (the outcome is then unknown). */
  leaseMs: z.number().int().positive(),
  /**
   * How long a record whose outcome is unresolved is kept (a claim whose owner vanished, or one marked unknown).
   * Default 24 hours.
   */
  retainMs: z
    .number()
    .int()
    .positive()
    .default(24 * 60 * 60 * 1000),
  /**
   * What the writer knew before writing (JSON text, e.g. the upstream records that already matched), kept with the
   * claim so that whoever resolves an unknown outcome can read the upstream back against it.
   */
  context: z.string().max(1_000_000).optional(),
});

/** A claim request, see {@link claimInputSchema}. */
export type ClaimInput = z.input<typeof claimInputSchema>;

/** Schema of a completion (see {@link IdempotencyStore.complete}). */
export const completeInputSchema = z.object({
  /** The idempotency key. */
  key: idempotencyKeySchema,
  /** The owner that claimed it. */
  owner: z.string().min(1).max(64),
  /** The answer to replay, as JSON text. */
  response: z.string(),
  /** When the record may be forgotten, epoch milliseconds. */
  expiresAt: z.number().int().nonnegative(),
});

/** A completion, see {@link completeInputSchema}. */
export type CompleteInput = z.infer<typeof completeInputSchema>;

/** Schema of {@link IdempotencyStore.markUnknown}'s input. */
export const markUnknownInputSchema = z.object({
  /** The idempotency key. */
  key: idempotencyKeySchema,
  /** The owner that claimed it. */
  owner: z.string().min(1).max(64),
  /** When the unresolved record may be forgotten, epoch milliseconds. */
  expiresAt: z.number().int().nonnegative(),
});

/** Input of {@link IdempotencyStore.markUnknown}. */
export type MarkUnknownInput = z.infer<typeof markUnknownInputSchema>;

/**
 * The transaction a completion runs in: with the MySQL store, the connection whose transaction records the answer,
 * so that the caller's own writes (an outbox row, a cache entry) commit or roll back with it. The memory store has
 * no connection.
 */
export interface IdempotencyTransaction {
  /** The connection of the open transaction (MySQL); absent in memory. */
  connection?: TransactionConnection;
}

/**
 * A connection with an open transaction: mysql2's `PoolConnection` after `beginTransaction()`, typed by what a caller
 * needs to add its own rows (e.g. `@cdss/fhir-mapper`'s outbox), so that the port does not depend on mysql2's types.
 */
export interface TransactionConnection {
  execute(sql: string, values: (string | number | null)[]): Promise<unknown>;
}

/** Options of {@link IdempotencyStore.complete}. */
export interface CompleteOptions {
  /**
   * Runs in the same transaction as the completion: if it throws, the answer is not recorded (the key stays
   * claimed by its owner) and the error is rethrown.
   */
  within?: (transaction: IdempotencyTransaction) => Promise<void>;
}

/** What a claim found. */
export type IdempotencyClaim =
  | {
      /** The caller now owns the key and must run the write, then `complete`, `markUnknown` or `release`. */
      status: 'claimed';
    }
  | {
      /**
       * The caller now owns a key whose earlier attempt has an unknown outcome (its owner vanished, or it timed
       * out after sending): read the upstream back before writing again, then `complete`, `markUnknown` or write.
       */
      status: 'recover';
      /** The context the first attempt recorded, if any. */
      context: string | undefined;
    }
  | {
      /** Another request owns the key and is running its write. */
      status: 'pending';
      /** Fingerprint of the request holding the key. */
      fingerprint: string;
      /** When its lease ends (epoch ms). */
      leaseUntil: number;
    }
  | {
      /** The key's earlier attempt has an unknown outcome, and it was made for another request (not taken over). */
      status: 'unknown';
      /** Fingerprint of the request the key was used for. */
      fingerprint: string;
    }
  | {
      /** A request with this key finished; replay its response. */
      status: 'done';
      /** Fingerprint of the request that finished. */
      fingerprint: string;
      /** Its answer, as JSON text. */
      response: string;
    };

/**
 * The idempotency port, after the IETF `Idempotency-Key` draft. A key moves from absent to `pending` (claimed,
 * lease-bounded), then to `done` (answer recorded), to `unknown` (the write may or may not have reached the
 * upstream: a timeout, a reset connection, an owner that died), or back to absent (released: nothing was written).
 * An `unknown` key, or a `pending` one whose lease ended, is handed to the next claimant with the same fingerprint
 * as `recover`: it must find out what happened before writing again.
 */
export interface IdempotencyStore {
  /**
   * Claims a key, takes over one whose outcome is unknown (same fingerprint only), or reports who holds it. An
   * expired `done` record counts as absent.
   * @param input - key, request fingerprint, owner, time, lease, context
   * @returns the claim outcome
   * @throws `ValidationError` for bad input; `CacheUnavailableError` when the backend is unreachable
   */
  claim(input: ClaimInput): Promise<IdempotencyClaim>;
  /**
   * Records the answer of a claimed key, atomically with `options.within`.
   * @param input - key, owner, response, record expiry
   * @param options - `within`: the caller's writes, in the same transaction
   * @returns false when `owner` no longer held the claim (its lease was taken over); `within` did not run
   */
  complete(input: CompleteInput, options?: CompleteOptions): Promise<boolean>;
  /**
   * Marks a claimed key's outcome unknown (the write may have reached the upstream): the next claimant recovers it.
   * @returns false when `owner` no longer held the claim
   */
  markUnknown(input: MarkUnknownInput): Promise<boolean>;
  /**
   * Drops a claim that did not complete (the write failed, nothing was written).
   * @param key - the idempotency key
   * @param owner - the claim's owner
   */
  release(key: string, owner: string): Promise<void>;
  /**
   * Forgets records that ended before `now` (answers past their expiry, unresolved records past their retention).
   * @param now - epoch milliseconds
   * @returns how many were dropped
   */
  sweep(now: number): Promise<number>;
  /** Releases resources. */
  close(): Promise<void>;
}

interface MemoryRecord {
  fingerprint: string;
  owner: string;
  state: 'pending' | 'unknown' | 'done';
  response: string | undefined;
  context: string | undefined;
  /** Lease end while pending; record end when done or unknown. */
  until: number;
  /** When the record is forgotten. */
  forgetAt: number;
}

/** A finished idempotent request, as {@link MemoryIdempotencyStore.peekDone} returns it. */
export interface FinishedRecord {
  /** The request fingerprint. */
  fingerprint: string;
  /** The answer, as JSON text. */
  response: string;
}

/** Options of {@link MemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /** Most records kept; the oldest go first. Default 100 000. */
  maxRecords?: number;
}

/** The in-process {@link IdempotencyStore}: per instance, bounded, lost on restart. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, MemoryRecord>();
  private readonly maxRecords: number;

  /** @param options - bound on records */
  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.maxRecords = parseOrThrow(
      z.number().int().positive(),
      options.maxRecords ?? 100_000,
      'Invalid MemoryIdempotencyStore options',
    );
  }

  /** {@inheritDoc IdempotencyStore.claim} */
  async claim(input: ClaimInput): Promise<IdempotencyClaim> {
    const c = parseOrThrow(claimInputSchema, input, 'Invalid idempotency claim');
    const found = this.records.get(c.key);
    if (found && found.forgetAt > c.now) {
      if (found.state === 'done') {
        if (found.until > c.now)
          return { status: 'done', fingerprint: found.fingerprint, response: found.response ?? 'null' };
      } else if (found.state === 'pending' && found.until > c.now) {
        return { status: 'pending', fingerprint: found.fingerprint, leaseUntil: found.until };
      } else {
        // unknown, or pending with its lease over: the outcome of the earlier attempt is unknown
        if (found.fingerprint !== c.fingerprint) return { status: 'unknown', fingerprint: found.fingerprint };
        found.state = 'pending';
        found.owner = c.owner;
        found.until = c.now + c.leaseMs;
        return { status: 'recover', context: found.context };
      }
    }
    this.put(c.key, {
      fingerprint: c.fingerprint,
      owner: c.owner,
      state: 'pending',
      response: undefined,
      context: c.context,
      until: c.now + c.leaseMs,
      forgetAt: c.now + Math.max(c.retainMs, c.leaseMs),
    });
    return { status: 'claimed' };
  }

  /** {@inheritDoc IdempotencyStore.complete} */
  async complete(input: CompleteInput, options: CompleteOptions = {}): Promise<boolean> {
    const c = parseOrThrow(completeInputSchema, input, 'Invalid idempotency completion');
    const found = this.records.get(c.key);
    if (!found || found.owner !== c.owner || found.state !== 'pending') return false;
    await options.within?.({});
    // the owner may have lost the key while `within` ran
    if (found.owner !== c.owner || found.state !== 'pending') return false;
    found.state = 'done';
    found.response = c.response;
    found.until = c.expiresAt;
    found.forgetAt = c.expiresAt;
    return true;
  }

  /** {@inheritDoc IdempotencyStore.markUnknown} */
  async markUnknown(input: MarkUnknownInput): Promise<boolean> {
    const m = parseOrThrow(markUnknownInputSchema, input, 'Invalid idempotency update');
    const found = this.records.get(m.key);
    if (!found || found.owner !== m.owner || found.state !== 'pending') return false;
    found.state = 'unknown';
    found.until = m.expiresAt;
    found.forgetAt = m.expiresAt;
    return true;
  }

  /**
   * Records a finished request directly (used by the coordinator to keep a local copy of answers recorded in MySQL).
   * @param key - the idempotency key
   * @param fingerprint - the request fingerprint
   * @param response - the answer as JSON text
   * @param expiresAt - when to forget it
   */
  remember(key: string, fingerprint: string, response: string, expiresAt: number): void {
    this.put(key, {
      fingerprint,
      owner: '',
      state: 'done',
      response,
      context: undefined,
      until: expiresAt,
      forgetAt: expiresAt,
    });
  }

  /**
   * Looks up a finished record without claiming.
   * @param key - the idempotency key
   * @param now - epoch milliseconds
   * @returns the finished record, if any
   */
  peekDone(key: string, now: number): FinishedRecord | undefined {
    const found = this.records.get(key);
    if (!found || found.state !== 'done' || found.until <= now) return undefined;
    return { fingerprint: found.fingerprint, response: found.response ?? 'null' };
  }

  /** {@inheritDoc IdempotencyStore.release} */
  async release(key: string, owner: string): Promise<void> {
    const found = this.records.get(key);
    if (found && found.owner === owner && found.state === 'pending') this.records.delete(key);
  }

  /** {@inheritDoc IdempotencyStore.sweep} */
  async sweep(now: number): Promise<number> {
    let dropped = 0;
    for (const [key, record] of [...this.records]) {
      if (record.forgetAt <= now) {
        this.records.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** {@inheritDoc IdempotencyStore.close} */
  async close(): Promise<void> {
    this.records.clear();
  }

  /** Stores `record` as the newest, then drops the oldest records beyond `maxRecords`. */
  private put(key: string, record: MemoryRecord): void {
    this.records.delete(key);
    this.records.set(key, record);
    while (this.records.size > this.maxRecords) {
      const oldest = this.records.keys().next();
      if (oldest.done) break;
      this.records.delete(oldest.value);
    }
  }
}
