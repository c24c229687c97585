/**
 * `@cdss/cli`: the `cdss` command line as a library (for tests and for embedding). The executable is `cdss`.
 * @packageDocumentation
 */
export { runCli, EXIT } from './run.js';
export type { CliIo } from './run.js';
export { loadCliConfig, cliConfigSchema, ConfigError, CONFIG_ENV } from './config.js';
export type { CliConfig } from './config.js';
export { importFolder } from './import-folder.js';
export type { ImportSummary, ImportProgress } from './import-folder.js';
