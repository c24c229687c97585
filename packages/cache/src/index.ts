/**
 * `@cdss/cache`: cache-aside reads and upstream-first (OpenEMR-first) writes over memory and MySQL stores, with
 * idempotent writes, cross-instance invalidation and metrics hooks.
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
export { MySqlStore, mySqlStoreOptionsSchema } from './mysql-store.js';
export type { MySqlStoreOptions } from './mysql-store.js';
export { mysqlConnectionOptionsSchema, tableNameSchema } from './mysql-shared.js';
export type { MySqlConnectionOptions } from './mysql-shared.js';
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
  MySqlIdempotencyStore,
  idempotencyKeySchema,
  claimInputSchema,
  completeInputSchema,
  markUnknownInputSchema,
  mySqlIdempotencyStoreOptionsSchema,
} from './idempotency.js';
export type {
  IdempotencyStore,
  IdempotencyClaim,
  ClaimInput,
  CompleteInput,
  CompleteOptions,
  MarkUnknownInput,
  IdempotencyTransaction,
  MemoryIdempotencyStoreOptions,
  FinishedRecord,
  MySqlIdempotencyStoreOptions,
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
export {
  MemoryInvalidationHub,
  MemoryInvalidationBus,
  AmqpInvalidationBus,
  invalidationMessageSchema,
  amqpInvalidationBusOptionsSchema,
} from './bus.js';
export type { InvalidationBus, InvalidationEvent, InvalidationMessage, AmqpInvalidationBusOptions } from './bus.js';
