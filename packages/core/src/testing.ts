export { requireService, SERVICE_DEFAULTS } from './testing/services.js';
export type { ServiceName, ServiceProbe } from './testing/services.js';
