/**
 * Server events delivered to WebSocket clients. They travel through an {@link EventBus} so that an event raised on one
 * server instance reaches the clients connected to every instance.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';

/** Event names. */
export const eventTypeSchema = z.enum(['analysis.progress', 'analysis.completed', 'analysis.failed', 'patient.updated', 'patient.alert']);

/** An event. `patientId` decides who may see it; `analysisId` routes analysis events to their subscribers. */
export const serverEventSchema = z.object({
  type: eventTypeSchema,
  patientId: z.string(),
  analysisId: z.string().optional(),
  data: z.record(z.string(), z.unknown()),
  time: z.string(),
});
/** An event. */
export type ServerEvent = z.infer<typeof serverEventSchema>;

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
