/**
 * Invalidation across server instances: a write on one instance drops the key from every other instance's L1.
 * The port and its in-memory implementation (one process, for tests and single-instance setups); the AMQP fanout
 * (RabbitMQ) implementation is in `@cdss/cache/amqp`.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
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

/** What `publish` accepts: the keys of one message. Shared with the AMQP bus, not part of the public API. */
export const keysSchema = invalidationMessageSchema.shape.keys;

/** Delivers events to handlers, isolating their failures. Shared with the AMQP bus, not part of the public API. */
export class Subscribers {
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
