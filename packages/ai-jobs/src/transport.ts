/**
 * The transport port: how job messages travel. Two adapters implement it with the same semantics, checked by one
 * contract suite: {@link AmqpTransport} (RabbitMQ via amqplib) and {@link MemoryTransport} (in-process).
 *
 * Topology (names under a prefix, default `cdss.ai`):
 * - work exchange `<p>.work` (direct) → work queue `<p>.work.q` (durable, `x-max-priority` 10, dead-letters to `<p>.dead`)
 * - one retry queue per backoff delay, `<p>.retry.<ms>` (durable, `x-message-ttl` = the delay, dead-letters back
 *   to the work exchange): a retried request waits there, then returns to the work queue
 * - dead-letter exchange `<p>.dead` (fanout) → `<p>.dead.q`, where poison messages wait with their reason
 * - events exchange `<p>.events` (topic): `job.<type>` routing keys feed the server's durable `<p>.events.q`;
 *   `control.cancel` reaches every worker's own transient queue
 * @packageDocumentation
 */
import { z } from 'zod';

/** Header carrying a message's attempt number (1 for the first delivery; each retry adds one). */
export const ATTEMPT_HEADER = 'x-cdss-attempt';
/**
 * A delivery's attempt number from its {@link ATTEMPT_HEADER}: 1 when the header is absent or not an integer ≥ 1.
 * @param headers - the message's headers
 * @returns the attempt
 * @internal
 */
export function attemptOf(headers: Readonly<Record<string, unknown>>): number {
  const a = Number(headers[ATTEMPT_HEADER]);
  return Number.isInteger(a) && a >= 1 ? a : 1;
}
/** Header carrying why a message was dead-lettered (a {@link DeadLetterReason}). */
export const DEAD_LETTER_REASON_HEADER = 'x-cdss-dead-letter-reason';
/** Header carrying a PHI-free detail of why a message was dead-lettered. */
export const DEAD_LETTER_DETAIL_HEADER = 'x-cdss-dead-letter-detail';
/** Header carrying the queue a dead-lettered message came from. */
export const DEAD_LETTER_SOURCE_HEADER = 'x-cdss-dead-letter-source';

/** Why a message went to the dead-letter queue. */
export const deadLetterReasonSchema = z.enum([
  'malformed',
  'unsupported-version',
  'schema-invalid',
  'unexpected-type',
  'retries-exhausted',
  'handler-error',
]);
/** Why a message went to the dead-letter queue. */
export type DeadLetterReason = z.infer<typeof deadLetterReasonSchema>;

/** The transport's topology options. */
export const topologyOptionsSchema = z.object({
  /** Prefix of every exchange and queue name. Default `cdss.ai`. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/)
    .default('cdss.ai'),
  /** Backoff delays of the retry queues, in ms, one queue each. Default `[1000, 5000, 30000]`. */
  retryDelaysMs: z.array(z.int().min(1).max(86_400_000)).min(1).max(10).default([1000, 5000, 30000]),
});
/** The transport's topology options (input form). */
export type TopologyOptions = z.input<typeof topologyOptionsSchema>;

/**
 * Queue and exchange names for a prefix.
 * @param prefix - the topology prefix
 * @param retryDelaysMs - one retry queue per delay
 * @returns the names
 */
export function topologyNames(
  prefix: string,
  retryDelaysMs: readonly number[],
): {
  workExchange: string;
  workQueue: string;
  retryQueues: string[];
  deadExchange: string;
  deadQueue: string;
  eventsExchange: string;
  eventsQueue: string;
} {
  return {
    workExchange: `${prefix}.work`,
    workQueue: `${prefix}.work.q`,
    retryQueues: retryDelaysMs.map((ms) => `${prefix}.retry.${ms}`),
    deadExchange: `${prefix}.dead`,
    deadQueue: `${prefix}.dead.q`,
    eventsExchange: `${prefix}.events`,
    eventsQueue: `${prefix}.events.q`,
  };
}

/** Routing key of work requests. */
export const WORK_ROUTING_KEY = 'analysis.requested';
/** Routing key of cancellations sent to workers. */
export const CONTROL_CANCEL_ROUTING_KEY = 'control.cancel';

/** A message to publish. */
export interface OutgoingMessage {
  /** The body (UTF-8 JSON for protocol messages, but the transport does not care). */
  body: Buffer;
  /** AMQP `message_id`. */
  messageId: string;
  /** AMQP `type`: the protocol message type. */
  type: string;
  /** AMQP `correlation_id`: the job id. */
  correlationId?: string;
  /** 0–9; only the work queue honours it. */
  priority?: number;
  /** Extra headers. */
  headers?: Record<string, string | number | boolean>;
}

/** One delivered message. Settle it exactly once with one of its methods; until then it counts against prefetch. */
export interface Delivery {
  /** The message body. */
  readonly body: Buffer;
  /** AMQP `message_id`. */
  readonly messageId: string | undefined;
  /** AMQP `type`. */
  readonly type: string | undefined;
  /** AMQP `correlation_id` (the job id). */
  readonly correlationId: string | undefined;
  /** 0–9. */
  readonly priority: number;
  /** AMQP headers. */
  readonly headers: Readonly<Record<string, unknown>>;
  /** True when the broker delivered it before (to a consumer that did not settle it). */
  readonly redelivered: boolean;
  /** 1 + the number of retries ({@link ATTEMPT_HEADER}). */
  readonly attempt: number;
  /** Done with it: remove it from the queue. */
  ack(): Promise<void>;
  /** Hand it back now for another consumer (or this one) to take. */
  requeue(): Promise<void>;
  /**
   * Retry after the delay of retry queue `index` (clamped to the last): the copy, with attempt + 1, is confirmed
   * by the broker before this delivery is acknowledged, so a crash in between duplicates it but never loses it.
   */
  retry(index: number): Promise<void>;
  /** Move it to the dead-letter queue with a reason (confirmed before the acknowledgement). */
  deadLetter(reason: DeadLetterReason, detail: string): Promise<void>;
}

/** A message read from the dead-letter queue. */
export interface DeadLetter {
  /** The message body, unchanged. */
  body: Buffer;
  /** AMQP `message_id`. */
  messageId: string | undefined;
  /** {@link DEAD_LETTER_REASON_HEADER}: a {@link DeadLetterReason}. */
  reason: string | undefined;
  /** {@link DEAD_LETTER_DETAIL_HEADER}: PHI-free detail. */
  detail: string | undefined;
  /** {@link DEAD_LETTER_SOURCE_HEADER}: the queue it came from. */
  source: string | undefined;
  /** All headers. */
  headers: Readonly<Record<string, unknown>>;
}

/** Handles one delivery. It should settle the delivery; if it throws first, the delivery is handed back. */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

/** A running consumer. */
export interface Consumer {
  /** Stops new deliveries; deliveries in hand stay valid until settled or the transport closes. */
  cancel(): Promise<void>;
}

/** Options of a consumer. */
export interface ConsumeOptions {
  /** How many unsettled deliveries it may hold (AMQP prefetch). */
  prefetch: number;
}

/** Queues whose depth {@link JobTransport.depth} reports. */
export type QueueName = 'work' | 'events' | 'dead' | `retry:${number}`;

/** The transport port. */
export interface JobTransport {
  /** The retry delays, one per retry queue. */
  readonly retryDelaysMs: readonly number[];
  /** Connects and declares the topology (idempotent). */
  start(): Promise<void>;
  /** Publishes a request to the work queue; resolves once the broker has it safely. */
  publishRequest(message: OutgoingMessage): Promise<void>;
  /** Publishes an event (`job.<type>`) or a control message (`control.cancel`); resolves once confirmed. */
  publishEvent(routingKey: string, message: OutgoingMessage): Promise<void>;
  /** Consumes the work queue. */
  consumeRequests(handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer>;
  /** Consumes the server's events queue. */
  consumeEvents(handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer>;
  /** Receives control messages on a queue of this consumer's own (lost while disconnected). */
  consumeControl(handler: DeliveryHandler): Promise<Consumer>;
  /** Takes up to `max` messages off the dead-letter queue (for operators and tests). */
  takeDeadLetters(max: number): Promise<DeadLetter[]>;
  /** Ready messages in a queue. */
  depth(queue: QueueName): Promise<number>;
  /** Stops consumers, hands back unsettled deliveries, closes. */
  close(): Promise<void>;
}
