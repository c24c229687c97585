/**
 * `@cdss/cache/amqp`: cache invalidation across server instances over RabbitMQ. Needs `amqplib` (a peer dependency:
 * install it next to `@cdss/cache`).
 * @packageDocumentation
 */
export { AmqpInvalidationBus, amqpInvalidationBusOptionsSchema } from './amqp-bus.js';
export type { AmqpInvalidationBusOptions } from './amqp-bus.js';
