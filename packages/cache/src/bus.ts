/**
 * Invalidation across server instances: a write on one instance drops the key from every other instance's L1.
 * In-memory (one process, for tests and single-instance setups) and AMQP fanout (RabbitMQ) implementations.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type RecoveringChannelModel } from 'amqplib';
import { TimeoutError } from '@cdss/core';
import { z } from 'zod';
import { CacheUnavailableError, parseOrThrow } from './errors.js';
import { cacheKeySchema } from './types.js';

/** Schema of an invalidation message on the wire (version 1). */
export const invalidationMessageSchema = z.object({
  /** Message format version. */
  v: z.literal(1),
  /** Instance that published it; its own messages are not delivered back to it. */
  origin: z.string().min(1).max(128),
  /** Keys to drop. */
  keys: z.array(cacheKeySchema).min(1).max(1_000),
});

/** An invalidation message, see {@link invalidationMessageSchema}. */
export type InvalidationMessage = z.infer<typeof invalidationMessageSchema>;

/**
 * What a subscriber receives: keys another instance changed, or `all` when messages may have been missed
 * (the bus reconnected), in which case the whole L1 should go.
 */
export type InvalidationEvent =
  | {
      /** Drop these keys. */
      kind: 'keys';
      /** The keys another instance changed. */
      keys: readonly string[];
      /** The instance that changed them. */
      origin: string;
    }
  | {
      /** Drop everything: messages may have been missed. */
      kind: 'all';
      /** Why. */
      reason: 'reconnected';
    };

/** The invalidation port. */
export interface InvalidationBus {
  /** This instance's id (the `origin` of what it publishes). */
  readonly instanceId: string;
  /**
   * Tells every other instance to drop `keys` from its L1.
   * @param keys - 1 to 1000 cache keys
   * @throws `ValidationError` for bad keys; {@link CacheUnavailableError} when the bus is unreachable
   */
  publish(keys: readonly string[]): Promise<void>;
  /**
   * Registers a handler for other instances' invalidations.
   * @param handler - called synchronously per event; what it throws is ignored
   * @returns a function that unsubscribes
   */
  subscribe(handler: (event: InvalidationEvent) => void): () => void;
  /** Stops receiving and releases connections. */
  close(): Promise<void>;
}

/** What `publish` accepts: the keys of one message. */
const keysSchema = invalidationMessageSchema.shape.keys;

/** Delivers events to handlers, isolating their failures. */
class Subscribers {
  private readonly handlers = new Set<(event: InvalidationEvent) => void>();

  add(handler: (event: InvalidationEvent) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  deliver(event: InvalidationEvent): void {
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch {
        // one subscriber's failure must not stop the others
      }
    }
  }

  clear(): void {
    this.handlers.clear();
  }
}

/**
 * An in-process hub standing in for the broker: every {@link MemoryInvalidationBus} connected to one hub receives
 * the others' messages (asynchronously, like a broker would deliver them).
 */
export class MemoryInvalidationHub {
  private readonly members = new Set<MemoryInvalidationBus>();

  /**
   * Connects a new instance to the hub.
   * @param instanceId - the instance's id; random by default
   * @returns the instance's bus
   */
  connect(instanceId: string = randomUUID()): MemoryInvalidationBus {
    const bus = new MemoryInvalidationBus(this, instanceId);
    this.members.add(bus);
    return bus;
  }

  /**
   * Removes a closed member.
   * @internal
   */
  leave(bus: MemoryInvalidationBus): void {
    this.members.delete(bus);
  }

  /**
   * Delivers a message to every member but its origin.
   * @internal
   */
  broadcast(message: InvalidationMessage): void {
    for (const member of this.members) {
      if (member.instanceId !== message.origin) member.receive(message);
    }
  }
}

/** The in-memory {@link InvalidationBus}; create it with {@link MemoryInvalidationHub.connect}. */
export class MemoryInvalidationBus implements InvalidationBus {
  private readonly subscribers = new Subscribers();
  private closed = false;

  /** @internal use {@link MemoryInvalidationHub.connect} */
  constructor(
    private readonly hub: MemoryInvalidationHub,
    /** This instance's id. */
    readonly instanceId: string,
  ) {}

  /** {@inheritDoc InvalidationBus.publish} */
  publish(keys: readonly string[]): Promise<void> {
    try {
      const checked = parseOrThrow(keysSchema, keys, 'Invalid invalidation keys');
      if (this.closed) throw new CacheUnavailableError('memory-bus', 'Invalidation bus is closed');
      const message: InvalidationMessage = { v: 1, origin: this.instanceId, keys: checked };
      queueMicrotask(() => this.hub.broadcast(message));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@inheritDoc InvalidationBus.subscribe} */
  subscribe(handler: (event: InvalidationEvent) => void): () => void {
    return this.subscribers.add(handler);
  }

  /**
   * Delivers one message to this member's subscribers.
   * @internal
   */
  receive(message: InvalidationMessage): void {
    if (!this.closed) this.subscribers.deliver({ kind: 'keys', keys: message.keys, origin: message.origin });
  }

  /** {@inheritDoc InvalidationBus.close} */
  close(): Promise<void> {
    this.closed = true;
    this.hub.leave(this);
    this.subscribers.clear();
    return Promise.resolve();
  }
}

/** Schema of {@link AmqpInvalidationBusOptions}' plain fields. */
export const amqpInvalidationBusOptionsSchema = z.object({
  /** `amqp://user:pass@host:port/vhost`. */
  url: z.string().url(),
  /** The fanout exchange every instance binds a private queue to. */
  exchange: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'exchange name must be letters, digits, _ . : -')
    .default('cdss.cache.invalidations'),
  /** This instance's id; random by default. */
  instanceId: z.string().min(1).max(128).optional(),
  /** Bound on waiting for the broker to confirm a publish. */
  publishTimeoutMs: z.number().int().positive().default(2_000),
  /** Retries of the first connection before `open` fails (later reconnects retry for ever). */
  initialRetries: z.number().int().nonnegative().default(3),
  /** Longest pause between reconnect attempts. */
  maxReconnectDelayMs: z.number().int().positive().default(5_000),
});

/** Options of {@link AmqpInvalidationBus.open}. */
export type AmqpInvalidationBusOptions = z.input<typeof amqpInvalidationBusOptionsSchema>;

/**
 * The {@link InvalidationBus} on RabbitMQ: a durable fanout exchange; each instance binds an exclusive, auto-deleted
 * queue to it. Publishes wait for the broker's confirm. The connection recovers by itself (amqplib recovery); after
 * a reconnect subscribers get `{ kind: 'all' }`, since messages sent meanwhile were lost with the old queue.
 */
export class AmqpInvalidationBus implements InvalidationBus {
  /** This instance's id. */
  readonly instanceId: string;
  private readonly subscribers = new Subscribers();
  private readonly exchange: string;
  private readonly publishTimeoutMs: number;
  private connection: RecoveringChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private connects = 0;
  private closed = false;

  private constructor(options: z.output<typeof amqpInvalidationBusOptionsSchema>) {
    this.instanceId = options.instanceId ?? randomUUID();
    this.exchange = options.exchange;
    this.publishTimeoutMs = options.publishTimeoutMs;
  }

  /**
   * Connects, declares the exchange and this instance's queue, and starts consuming.
   * @param options - broker URL, exchange, timeouts
   * @returns the connected bus
   * @throws `ValidationError` for bad options; {@link CacheUnavailableError} when the broker cannot be reached
   */
  static async open(options: AmqpInvalidationBusOptions): Promise<AmqpInvalidationBus> {
    const parsed = parseOrThrow(amqpInvalidationBusOptionsSchema, options, 'Invalid AmqpInvalidationBus options');
    const bus = new AmqpInvalidationBus(parsed);
    try {
      bus.connection = await connect(parsed.url, {
        recovery: {
          initialDelay: 100,
          maxDelay: parsed.maxReconnectDelayMs,
          initialMaxRetries: parsed.initialRetries,
          maxRetries: Infinity,
          setup: (model: ChannelModel) => bus.setup(model),
        },
      });
    } catch (error) {
      throw new CacheUnavailableError('amqp', 'RabbitMQ is unavailable', { cause: error });
    }
    bus.connection.on('disconnect', () => {
      bus.publisher = undefined;
    });
    // Errors surface through 'disconnect' and reconnects; an unhandled 'error' event would crash the process.
    bus.connection.on('error', () => undefined);
    return bus;
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.publisher !== undefined;
  }

  private async setup(model: ChannelModel): Promise<void> {
    const publisher = await model.createConfirmChannel();
    publisher.on('error', () => undefined);
    await publisher.assertExchange(this.exchange, 'fanout', { durable: true });
    const consumer: Channel = await model.createChannel();
    consumer.on('error', () => undefined);
    const { queue } = await consumer.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await consumer.bindQueue(queue, this.exchange, '');
    await consumer.consume(
      queue,
      (msg) => {
        if (!msg) return; // queue deleted under us; recovery re-creates it
        this.onMessage(msg.content);
      },
      { noAck: true },
    );
    this.publisher = publisher;
    this.connects++;
    // Anything published while we were away went to a queue that no longer exists: drop all of L1.
    if (this.connects > 1) this.subscribers.deliver({ kind: 'all', reason: 'reconnected' });
  }

  private onMessage(content: Buffer): void {
    let decoded: unknown;
    try {
      decoded = JSON.parse(content.toString('utf8'));
    } catch {
      return; // not ours; ignore
    }
    const parsed = invalidationMessageSchema.safeParse(decoded);
    if (!parsed.success || parsed.data.origin === this.instanceId) return;
    this.subscribers.deliver({ kind: 'keys', keys: parsed.data.keys, origin: parsed.data.origin });
  }

  /** {@inheritDoc InvalidationBus.publish} */
  async publish(keys: readonly string[]): Promise<void> {
    const checked = parseOrThrow(keysSchema, keys, 'Invalid invalidation keys');
    const publisher = this.publisher;
    if (this.closed || !publisher) throw new CacheUnavailableError('amqp', 'Invalidation bus is not connected');
    const message: InvalidationMessage = { v: 1, origin: this.instanceId, keys: checked };
    const body = Buffer.from(JSON.stringify(message));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          publisher.publish(this.exchange, '', body, { contentType: 'application/json' }, (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error('publish nacked')) : resolve(),
          );
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new TimeoutError(`publish not confirmed in ${this.publishTimeoutMs} ms`, this.publishTimeoutMs)),
            this.publishTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      throw new CacheUnavailableError('amqp', 'Publishing an invalidation failed', { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  /** {@inheritDoc InvalidationBus.subscribe} */
  subscribe(handler: (event: InvalidationEvent) => void): () => void {
    return this.subscribers.add(handler);
  }

  /** {@inheritDoc InvalidationBus.close} */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribers.clear();
    this.publisher = undefined;
    await this.connection?.close().catch(() => undefined);
  }
}
