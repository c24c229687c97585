export { requireService, SERVICE_DEFAULTS } from './testing/services.js';
export type { ServiceName, ServiceProbe } from './testing/services.js';
export { createTestClock } from './testing/clock.js';
export type { TestClock } from './testing/clock.js';
export { freePort, listenOnFreePort } from './testing/ports.js';
