/**
 * Server events delivered to WebSocket clients. They travel through an {@link EventBus} so that an event raised on one
 * server instance reaches the clients connected to every instance.
 */
import { EventEmitter } from 'node:events';
import type { ServerEvent } from '@cdss/client';

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
