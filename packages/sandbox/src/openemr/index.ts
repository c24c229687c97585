/**
 * OpenEMR emulator: OAuth2 + standard API + FHIR API with OpenEMR's real behaviour (issue 3).
 * @packageDocumentation
 */
export { createOpenEmrEmulator } from './router.js';
export type { OpenEmrEmulatorRouter } from './router.js';
export { OpenEmrEngine } from './engine.js';
export type { OpenEmrEmulatorOptions, OpenEmrEmulatorStats } from './engine.js';
export { DEFAULT_TOKEN_LIFETIMES } from './context.js';
export type { EmulatorRequest, EmulatorResponse, OpenEmrVersion, TokenLifetimes } from './context.js';
export { SEED_ADMIN, SEED_CLIENT } from './seed.js';
export { blankPatientRow } from './rows.js';
