export {
  createEmbeddedFhirServer,
  embeddedFhirServerOptionsSchema,
  loadFhirDefinitions,
  isOperationOutcome,
} from './server.js';
export type { EmbeddedFhirServer, EmbeddedFhirServerOptions } from './server.js';
export { createSmartBackendAuth, backendClientSchema, sendBearerRefusal } from './backend-auth.js';
export { createSmartFhirGateway } from './gateway.js';
export { startEmbeddedFhirServerThread } from './thread.js';
export type { EmbeddedFhirServerThread, EmbeddedFhirServerThreadOptions } from './thread.js';
export type { GatewayRequest, SmartFhirGateway, SmartFhirGatewayOptions } from './gateway.js';
export type {
  BackendClient,
  BearerCheck,
  SmartBackendAuth,
  SmartBackendAuthOptions,
  SmartBackendAuthStats,
} from './backend-auth.js';
