/**
 * Server events delivered to WebSocket clients. They travel through an {@link EventBus} so that an event raised on one
 * server instance reaches the clients connected to every instance.
 */
import { EventEmitter } from 'node:events';
import type { ServerEvent } from '@cdss/client';
import type { Channel, ChannelModel } from 'amqplib';

export type { ServerEvent };

/** Fans events out to every server instance, this one included. */
export interface EventBus {
  publish(event: ServerEvent): Promise<void>;
  subscribe(listener: (event: ServerEvent) => void): () => void;
  close(): Promise<void>;
}

/** A single-process bus (sandbox, tests). */
export function createLocalEventBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    async publish(event) {
      emitter.emit('event', event);
    },
    subscribe(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/**
 * A bus over a RabbitMQ fanout exchange: each server instance binds its own exclusive, auto-deleted queue, so every
 * instance receives every event and pushes it to its own WebSocket clients. Events are notifications (the state
 * they announce is in the job store and the EMR), so they are not persisted; a client that missed one re-reads.
 * Connect with `?heartbeat=10` in the URL to notice a dead broker quickly.
 * @param url - `amqp://user:pass@host:port/vhost`
 * @param exchange - the fanout exchange (declared if missing)
 */
export async function createAmqpEventBus(url: string, exchange = 'cdss.server-events'): Promise<EventBus> {
  const amqp = await import('amqplib');
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let channel: Channel | undefined;

  // amqplib's recovery reconnects (every second) and runs `setup` on each new connection; the first connection
  // is not retried, so a wrong URL fails the start.
  const connection = await amqp.connect(url, {
    recovery: {
      initialDelay: 1_000,
      factor: 1,
      jitter: 0,
      initialMaxRetries: 0,
      setup: async (model: ChannelModel) => {
        const ready = await model.createChannel();
        await ready.assertExchange(exchange, 'fanout', { durable: true });
        const { queue } = await ready.assertQueue('', { exclusive: true, autoDelete: true });
        await ready.bindQueue(queue, exchange, '');
        await ready.consume(
          queue,
          (message) => {
            if (!message) return;
            try {
              emitter.emit('event', JSON.parse(message.content.toString('utf8')) as ServerEvent);
            } catch {
              // A malformed notification is dropped; nothing depends on it.
            }
          },
          { noAck: true },
        );
        channel = ready;
      },
    },
  });
  connection.on('disconnect', () => {
    channel = undefined;
  });
  connection.on('error', () => undefined);

  return {
    async publish(event) {
      // While the broker is unreachable, this instance's own clients still get the event; others miss it and
      // re-read when they next load the page (notifications are best-effort by design).
      if (!channel) {
        emitter.emit('event', event);
        return;
      }
      channel.publish(exchange, '', Buffer.from(JSON.stringify(event)), { contentType: 'application/json' });
    },
    subscribe(listener) {
      emitter.on('event', listener);
      return () => emitter.off('event', listener);
    },
    async close() {
      emitter.removeAllListeners();
      channel = undefined;
      await connection.close();
    },
  };
}
