/**
 * `@cdss/fhir-mapper/mysql`: the sync outbox on MySQL/MariaDB (rows written in the caller's transaction). Takes a
 * `mysql2` pool (a peer dependency: install it next to `@cdss/fhir-mapper`).
 * @packageDocumentation
 */
export { MySqlOutbox } from './outbox/mysql-outbox.js';
export type { MySqlOutboxOptions } from './outbox/mysql-outbox.js';
