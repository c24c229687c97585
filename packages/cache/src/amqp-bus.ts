/**
 * The {@link InvalidationBus} over RabbitMQ (`@cdss/cache/amqp`): a fanout exchange every server instance binds a
 * private queue to. Its own entry point, so that only users of it need `amqplib` (a peer dependency).
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type RecoveringChannelModel } from 'amqplib';
import { TimeoutError } from '@cdss/core';
import { z } from 'zod';
import {
  Subscribers,
  invalidationMessageSchema,
  keysSchema,
  type InvalidationBus,
  type InvalidationEvent,
  type InvalidationMessage,
} from './bus.js';
import { CacheUnavailableError, parseOrThrow } from './errors.js';

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
