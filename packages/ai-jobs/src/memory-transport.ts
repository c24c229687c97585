/**
 * The in-memory transport: the same semantics as the AMQP one (priorities, prefetch, redelivery of unsettled
 * messages, retry queues with delays, a dead-letter queue with reasons, events and control fan-out), in one
 * process. Several {@link MemoryTransport}s on one {@link MemoryBroker} behave like several connections to one
 * RabbitMQ: closing one hands its unsettled deliveries back to the others.
 * @packageDocumentation
 */
import { CdssError } from '@cdss/core';
import {
  ATTEMPT_HEADER,
  DEAD_LETTER_DETAIL_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTER_SOURCE_HEADER,
  attemptOf,
  topologyNames,
  topologyOptionsSchema,
  type Consumer,
  type ConsumeOptions,
  type DeadLetter,
  type DeadLetterReason,
  type Delivery,
  type DeliveryHandler,
  type JobTransport,
  type OutgoingMessage,
  type QueueName,
  type TopologyOptions,
} from './transport.js';

interface StoredMessage {
  body: Buffer;
  messageId: string | undefined;
  type: string | undefined;
  correlationId: string | undefined;
  priority: number;
  headers: Record<string, unknown>;
  redelivered: boolean;
}

interface QueueConsumer {
  prefetch: number;
  unsettled: Set<MemoryDelivery>;
  handler: DeliveryHandler;
  owner: MemoryTransport;
  active: boolean;
}

class MemoryQueue {
  readonly ready: StoredMessage[] = [];
  readonly consumers: QueueConsumer[] = [];
  #next = 0;
  #scheduled = false;
  constructor(readonly name: string) {}

  /** Highest priority first, FIFO within a priority; a requeued message goes to the front of its priority. */
  enqueue(message: StoredMessage, front = false): void {
    let i = this.ready.length;
    if (front) {
      i = this.ready.findIndex((m) => m.priority <= message.priority);
      if (i < 0) i = this.ready.length;
    } else {
      while (i > 0 && this.ready[i - 1]!.priority < message.priority) i--;
    }
    this.ready.splice(i, 0, message);
    this.schedule();
  }

  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.dispatch();
    });
  }

  dispatch(): void {
    while (this.ready.length > 0) {
      const n = this.consumers.length;
      let picked: QueueConsumer | undefined;
      for (let k = 0; k < n; k++) {
        const c = this.consumers[(this.#next + k) % n]!;
        if (c.active && c.unsettled.size < c.prefetch) {
          picked = c;
          this.#next = (this.#next + k + 1) % n;
          break;
        }
      }
      if (!picked) return;
      const message = this.ready.shift()!;
      const delivery = new MemoryDelivery(message, this, picked);
      picked.unsettled.add(delivery);
      void picked.handler(delivery).catch(() => {
        if (!delivery.settled) void delivery.requeue();
      });
    }
  }
}

/**
 * The broker that {@link MemoryTransport}s share. Create one per sandbox (or per test).
 */
export class MemoryBroker {
  /** @internal */ readonly queues = new Map<string, MemoryQueue>();
  /** @internal */ readonly controlQueues = new Set<MemoryQueue>();
  /** @internal */ readonly timers = new Set<NodeJS.Timeout>();

  /** @internal */
  queue(name: string): MemoryQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MemoryQueue(name);
      this.queues.set(name, q);
    }
    return q;
  }
}

class MemoryDelivery implements Delivery {
  settled = false;
  readonly body: Buffer;
  readonly messageId: string | undefined;
  readonly type: string | undefined;
  readonly correlationId: string | undefined;
  readonly priority: number;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly redelivered: boolean;
  readonly attempt: number;

  constructor(
    readonly message: StoredMessage,
    readonly queue: MemoryQueue,
    readonly consumer: QueueConsumer,
  ) {
    this.body = message.body;
    this.messageId = message.messageId;
    this.type = message.type;
    this.correlationId = message.correlationId;
    this.priority = message.priority;
    this.headers = message.headers;
    this.redelivered = message.redelivered;
    this.attempt = attemptOf(message.headers);
  }

  #settle(): boolean {
    if (this.settled || !this.consumer.unsettled.has(this)) return false;
    this.settled = true;
    this.consumer.unsettled.delete(this);
    this.queue.schedule();
    return true;
  }

  async ack(): Promise<void> {
    this.#settle();
  }

  async requeue(): Promise<void> {
    if (this.#settle()) this.queue.enqueue({ ...this.message, redelivered: true }, true);
  }

  async retry(index: number): Promise<void> {
    if (this.settled) return;
    this.consumer.owner.retryCopy(this.message, index);
    this.#settle();
  }

  async deadLetter(reason: DeadLetterReason, detail: string): Promise<void> {
    if (this.settled) return;
    this.consumer.owner.deadLetterCopy(this.message, this.queue.name, reason, detail);
    this.#settle();
  }
}

/** A consumer of one {@link MemoryTransport}, on its queue. */
interface ConsumerEntry {
  queue: MemoryQueue;
  consumer: QueueConsumer;
  control: boolean;
}

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions extends TopologyOptions {
  /** The shared broker; default a new one of its own. */
  broker?: MemoryBroker;
}

/**
 * A {@link JobTransport} in memory.
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * const server = new MemoryTransport({ broker });
 * const worker = new MemoryTransport({ broker });
 * ```
 */
export class MemoryTransport implements JobTransport {
  /** The shared broker. */
  readonly broker: MemoryBroker;
  readonly retryDelaysMs: readonly number[];
  readonly #names: ReturnType<typeof topologyNames>;
  readonly #prefix: string;
  readonly #consumers = new Set<ConsumerEntry>();
  #closed = false;

  /** @param options - see {@link MemoryTransportOptions} */
  constructor(options: MemoryTransportOptions = {}) {
    const topo = topologyOptionsSchema.parse(options);
    this.broker = options.broker ?? new MemoryBroker();
    this.retryDelaysMs = topo.retryDelaysMs;
    this.#names = topologyNames(topo.prefix, topo.retryDelaysMs);
    this.#prefix = topo.prefix;
  }

  #assertOpen(): void {
    if (this.#closed) throw new CdssError('transport is closed', { code: 'TRANSPORT_CLOSED' });
  }

  async start(): Promise<void> {
    this.#assertOpen();
    for (const name of [
      this.#names.workQueue,
      this.#names.eventsQueue,
      this.#names.deadQueue,
      ...this.#names.retryQueues,
    ])
      this.broker.queue(name);
  }

  #store(message: OutgoingMessage): StoredMessage {
    return {
      body: Buffer.from(message.body),
      messageId: message.messageId,
      type: message.type,
      correlationId: message.correlationId,
      priority: Math.max(0, Math.min(9, message.priority ?? 0)),
      headers: { ...message.headers },
      redelivered: false,
    };
  }

  async publishRequest(message: OutgoingMessage): Promise<void> {
    this.#assertOpen();
    this.broker.queue(this.#names.workQueue).enqueue(this.#store(message));
  }

  async publishEvent(routingKey: string, message: OutgoingMessage): Promise<void> {
    this.#assertOpen();
    const stored = this.#store(message);
    if (routingKey.startsWith('job.')) this.broker.queue(this.#names.eventsQueue).enqueue(stored);
    else if (routingKey.startsWith('control.')) {
      for (const q of this.broker.controlQueues) q.enqueue({ ...stored, headers: { ...stored.headers } });
    }
  }

  /** @internal */
  retryCopy(message: StoredMessage, index: number): void {
    const i = Math.max(0, Math.min(index, this.retryDelaysMs.length - 1));
    const copy: StoredMessage = {
      ...message,
      redelivered: false,
      headers: { ...message.headers, [ATTEMPT_HEADER]: attemptOf(message.headers) + 1 },
    };
    const retryQueue = this.broker.queue(this.#names.retryQueues[i]!);
    retryQueue.ready.push(copy);
    const timer = setTimeout(() => {
      this.broker.timers.delete(timer);
      const at = retryQueue.ready.indexOf(copy);
      if (at >= 0) retryQueue.ready.splice(at, 1);
      // expired: back to the work queue, as the AMQP retry queue dead-letters to the work exchange
      this.broker.queue(this.#names.workQueue).enqueue(copy);
    }, this.retryDelaysMs[i]);
    timer.unref();
    this.broker.timers.add(timer);
  }

  /** @internal */
  deadLetterCopy(message: StoredMessage, source: string, reason: DeadLetterReason, detail: string): void {
    this.broker.queue(this.#names.deadQueue).enqueue({
      ...message,
      redelivered: false,
      headers: {
        ...message.headers,
        [DEAD_LETTER_REASON_HEADER]: reason,
        [DEAD_LETTER_DETAIL_HEADER]: detail.slice(0, 500),
        [DEAD_LETTER_SOURCE_HEADER]: source,
      },
    });
  }

  #consume(queue: MemoryQueue, handler: DeliveryHandler, prefetch: number, control: boolean): Consumer {
    this.#assertOpen();
    const consumer: QueueConsumer = {
      prefetch: Math.max(1, prefetch),
      unsettled: new Set(),
      handler,
      owner: this,
      active: true,
    };
    queue.consumers.push(consumer);
    const entry: ConsumerEntry = { queue, consumer, control };
    this.#consumers.add(entry);
    queue.schedule();
    return {
      cancel: async () => {
        this.#detach(entry);
      },
    };
  }

  /** Stops deliveries to a consumer (the deliveries it holds stay valid until settled or the transport closes). */
  #detach({ queue, consumer, control }: ConsumerEntry): void {
    consumer.active = false;
    const i = queue.consumers.indexOf(consumer);
    if (i >= 0) queue.consumers.splice(i, 1);
    if (control) this.broker.controlQueues.delete(queue);
  }

  async consumeRequests(handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    return this.#consume(this.broker.queue(this.#names.workQueue), handler, options.prefetch, false);
  }

  async consumeEvents(handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    return this.#consume(this.broker.queue(this.#names.eventsQueue), handler, options.prefetch, false);
  }

  async consumeControl(handler: DeliveryHandler): Promise<Consumer> {
    const queue = new MemoryQueue(`${this.#names.eventsExchange}.control.${this.broker.controlQueues.size}`);
    this.broker.controlQueues.add(queue);
    return this.#consume(queue, handler, 100, true);
  }

  async takeDeadLetters(max: number): Promise<DeadLetter[]> {
    const q = this.broker.queue(this.#names.deadQueue);
    return q.ready.splice(0, max).map((m) => ({
      body: m.body,
      messageId: m.messageId,
      reason: m.headers[DEAD_LETTER_REASON_HEADER] as string | undefined,
      detail: m.headers[DEAD_LETTER_DETAIL_HEADER] as string | undefined,
      source: m.headers[DEAD_LETTER_SOURCE_HEADER] as string | undefined,
      headers: m.headers,
    }));
  }

  async depth(queue: QueueName): Promise<number> {
    const n = this.#names;
    const name =
      queue === 'work'
        ? n.workQueue
        : queue === 'events'
          ? n.eventsQueue
          : queue === 'dead'
            ? n.deadQueue
            : `${this.#prefix}.retry.${queue.slice('retry:'.length)}`;
    return this.broker.queues.get(name)?.ready.length ?? 0;
  }

  /** Cancels this transport's consumers and hands their unsettled deliveries back, as a closing connection does. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#consumers) {
      this.#detach(entry);
      for (const d of [...entry.consumer.unsettled]) await d.requeue();
    }
    this.#consumers.clear();
  }
}
