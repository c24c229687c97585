/**
 * `@cdss/cache`: cache-aside reads and upstream-first (OpenEMR-first) writes over memory and MySQL stores, with
 * idempotent writes, cross-instance invalidation and metrics hooks. The MySQL stores are in `@cdss/cache/mysql` and the
 * RabbitMQ invalidation bus in `@cdss/cache/amqp`, so that only their users need `mysql2` or `amqplib`.
 * @packageDocumentation
 */
export { jsonValueSchema, cacheKeySchema, setTimingSchema, systemCacheClock } from './types.js';
export type {
  JsonValue,
  CacheTier,
  CacheEntry,
  SetTiming,
  CacheStore,
  CacheClock,
  EvictionReason,
  RepairOutcome,
  CacheMetricsListener,
} from './types.js';
export {
  CacheUnavailableError,
  IdempotencyConflictError,
  IdempotencyInProgressError,
  IdempotencyOutcomeUnknownError,
} from './errors.js';
export { MemoryStore, memoryStoreOptionsSchema } from './memory-store.js';
export type { MemoryStoreOptions } from './memory-store.js';
export { TieredStore, tieredStoreOptionsSchema } from './tiered-store.js';
export type { TieredStoreOptions } from './tiered-store.js';
export { Cache, freshnessPolicySchema } from './cache.js';
export type {
  CacheOptions,
  GetOrLoadOptions,
  CacheResult,
  CacheSource,
  FreshnessPolicy,
  CacheLogger,
} from './cache.js';
export { RepairQueue, repairQueueOptionsSchema } from './repair-queue.js';
export type { RepairQueueOptions, RepairRound } from './repair-queue.js';
export {
  MemoryIdempotencyStore,
  idempotencyKeySchema,
  claimInputSchema,
  completeInputSchema,
  markUnknownInputSchema,
} from './idempotency.js';
export type {
  IdempotencyStore,
  IdempotencyClaim,
  ClaimInput,
  CompleteInput,
  CompleteOptions,
  MarkUnknownInput,
  IdempotencyTransaction,
  TransactionConnection,
  MemoryIdempotencyStoreOptions,
  FinishedRecord,
} from './idempotency.js';
export {
  WriteCoordinator,
  writeCoordinatorOptionsSchema,
  isOutcomeUnknown,
  fingerprintOf,
} from './write-coordinator.js';
export type {
  WriteCoordinatorOptions,
  WriteRequest,
  WriteRequestFields,
  WriteOutcome,
  CacheUpdate,
} from './write-coordinator.js';
export { MemoryInvalidationHub, MemoryInvalidationBus, invalidationMessageSchema } from './bus.js';
export type { InvalidationBus, InvalidationEvent, InvalidationMessage } from './bus.js';
