export {
  createEmbeddedFhirServer,
  embeddedFhirServerOptionsSchema,
  loadFhirDefinitions,
  isOperationOutcome,
} from './server.js';
export type { EmbeddedFhirServer, EmbeddedFhirServerOptions } from './server.js';
