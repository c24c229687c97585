/**
 * `@cdss/ai-jobs/mysql`: the job store on MySQL/MariaDB. Needs `mysql2` (a peer dependency: install it next to
 * `@cdss/ai-jobs`).
 * @packageDocumentation
 */
export { MySqlJobStore } from './mysql-store.js';
export type { MySqlJobStoreOptions } from './mysql-store.js';
