/**
 * `@cdss/ai-jobs/amqp`: the job transport over RabbitMQ. Needs `amqplib` (a peer dependency: install it next to
 * `@cdss/ai-jobs`).
 * @packageDocumentation
 */
export { AmqpTransport } from './amqp-transport.js';
export type { AmqpTransportOptions } from './amqp-transport.js';
