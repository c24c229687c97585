/**
 * `@cdss/cache/mysql`: the MySQL/MariaDB cache store (L2) and idempotency store. Needs `mysql2` (a peer dependency:
 * install it next to `@cdss/cache`).
 * @packageDocumentation
 */
export { MySqlStore, mySqlStoreOptionsSchema } from './mysql-store.js';
export type { MySqlStoreOptions } from './mysql-store.js';
export { MySqlIdempotencyStore, mySqlIdempotencyStoreOptionsSchema } from './mysql-idempotency.js';
export type { MySqlIdempotencyStoreOptions } from './mysql-idempotency.js';
export { mysqlConnectionOptionsSchema, tableNameSchema } from './mysql-shared.js';
export type { MySqlConnectionOptions } from './mysql-shared.js';
