/**
 * Server events delivered to WebSocket clients. They travel through an {@link EventBus} so that an event raised on one
 * server instance reaches the clients connected to every instance.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ServerEvent } from '@cdss/client';
import type { Channel, ChannelModel } from 'amqplib';
import type { Pool, RowDataPacket } from 'mysql2/promise';

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

/** The topics an event belongs to: its patient's, and its analysis's when it has one. */
export function topicsOf(event: ServerEvent): string[] {
  return event.analysisId
    ? [`patient:${event.patientId}`, `analysis:${event.analysisId}`]
    : [`patient:${event.patientId}`];
}

/** What {@link EventLog.since} found. */
export interface Replay {
  /** The topic's events numbered above `since`, oldest first. */
  events: ServerEvent[];
  /** The topic's newest number (0 when it has none). */
  latest: number;
  /**
   * False when the log no longer holds every event after `since` (trimmed, or numbered by another epoch): the client
   * must re-read the state instead of relying on the replay.
   */
  complete: boolean;
  /** Changes when numbering starts over (a memory log after a restart); a client keeps it with its numbers. */
  epoch: string;
}

/**
 * A bounded replay log of server events: numbers each event consecutively in each of its topics and keeps the newest
 * ones, so that a WebSocket client that reconnects with `since` receives what it missed, once.
 */
export interface EventLog {
  /** Numbers and keeps an event; returns it with `id` and `seqs` set. */
  append(event: ServerEvent): Promise<ServerEvent>;
  /** The topic's events numbered above `since`. */
  since(topic: string, since: number): Promise<Replay>;
  close(): Promise<void>;
}

/** Options of {@link createMemoryEventLog}. */
export interface MemoryEventLogOptions {
  /** Events kept in all (oldest dropped first); default 10 000. */
  maxEvents?: number;
  /** Topics whose numbering is remembered; default 100 000 (forgetting one starts a new epoch). */
  maxTopics?: number;
}

/**
 * A replay log in this process's memory (sandbox, single instance). Numbering restarts with the process, which the
 * epoch tells clients.
 * @param options - bounds
 */
export function createMemoryEventLog(options: MemoryEventLogOptions = {}): EventLog {
  const maxEvents = options.maxEvents ?? 10_000;
  const maxTopics = options.maxTopics ?? 100_000;
  const events: ServerEvent[] = [];
  let head = 0;
  /** Per topic: the last number given, and the highest number dropped from the log. Insertion order = LRU. */
  const topics = new Map<string, { last: number; dropped: number }>();
  let epoch = randomUUID();
  const touch = (topic: string): { last: number; dropped: number } => {
    const state = topics.get(topic) ?? { last: 0, dropped: 0 };
    topics.delete(topic);
    topics.set(topic, state);
    if (topics.size > maxTopics) {
      topics.delete(topics.keys().next().value as string);
      // A forgotten topic would be numbered from 1 again: clients' numbers are void.
      epoch = randomUUID();
    }
    return state;
  };
  return {
    async append(event) {
      const seqs: Record<string, number> = {};
      for (const topic of topicsOf(event)) seqs[topic] = ++touch(topic).last;
      const numbered = { ...event, id: randomUUID(), seqs };
      events.push(numbered);
      if (events.length - head > maxEvents) {
        const old = events[head] as ServerEvent;
        events[head++] = undefined as unknown as ServerEvent;
        for (const [topic, seq] of Object.entries(old.seqs ?? {})) {
          const state = topics.get(topic);
          if (state) state.dropped = Math.max(state.dropped, seq);
        }
        if (head > maxEvents) {
          events.splice(0, head);
          head = 0;
        }
      }
      return numbered;
    },
    async since(topic, since) {
      const state = topics.get(topic);
      const latest = state?.last ?? 0;
      const found: ServerEvent[] = [];
      if (since < latest)
        for (let i = head; i < events.length; i++) {
          const seq = events[i]?.seqs?.[topic];
          if (seq !== undefined && seq > since) found.push(events[i] as ServerEvent);
        }
      return { events: found, latest, complete: since >= (state?.dropped ?? 0), epoch };
    },
    async close() {
      events.length = 0;
      topics.clear();
    },
  };
}

/**
 * A bus whose events are numbered in a replay log before they are published, so every server instance delivers
 * the same numbers (with a log shared by the instances, e.g. {@link createMySqlEventLog}).
 * @param bus - the fan-out
 * @param log - the replay log
 */
export function withReplayLog(bus: EventBus, log: EventLog): EventBus {
  // Appends to a shared log run in their own transactions and may finish out of call order (a progress event of
  // 25 % overtaking the one of 20 %). A patient's events are therefore appended and published one after another, in
  // the order they were raised; other patients' events do not wait for them.
  const tails = new Map<string, Promise<unknown>>();
  return {
    publish(event) {
      const key = event.patientId;
      const previous = tails.get(key);
      const append = async (): Promise<void> => bus.publish(await log.append(event));
      const published = previous ? previous.then(append) : append();
      const tail = published.catch(() => undefined);
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return published;
    },
    subscribe: (listener) => bus.subscribe(listener),
    async close() {
      await bus.close();
      await log.close();
    },
  };
}

/** Options of {@link createMySqlEventLog}. */
export interface MySqlEventLogOptions {
  pool: Pool;
  /** Table name prefix; default `cdss_ws`. */
  prefix?: string;
  /** Events kept per topic; default 256. */
  keepPerTopic?: number;
}

/**
 * A replay log in MySQL, shared by every server instance (connected mode): `<prefix>_topics` holds each topic's last
 * number (the row lock of its upsert orders concurrent appends), `<prefix>_events` the newest events per topic.
 * @param options - pool, table prefix, bound
 */
export async function createMySqlEventLog(options: MySqlEventLogOptions): Promise<EventLog> {
  const { pool } = options;
  const prefix = options.prefix ?? 'cdss_ws';
  if (!/^\w{1,40}$/.test(prefix)) throw new Error('invalid table prefix');
  const keep = options.keepPerTopic ?? 256;
  const topicsTable = `${prefix}_topics`;
  const eventsTable = `${prefix}_events`;
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${topicsTable} (topic VARCHAR(160) NOT NULL PRIMARY KEY, last BIGINT UNSIGNED NOT NULL, dropped BIGINT UNSIGNED NOT NULL DEFAULT 0) ENGINE=InnoDB`,
  );
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${eventsTable} (topic VARCHAR(160) NOT NULL, seq BIGINT UNSIGNED NOT NULL, body MEDIUMTEXT NOT NULL, created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (topic, seq)) ENGINE=InnoDB`,
  );
  return {
    async append(event) {
      // Topics locked in one order, so two appends never wait on each other crosswise.
      const topics = topicsOf(event).sort();
      const connection = await pool.getConnection();
      try {
        await connection.beginTransaction();
        const seqs: Record<string, number> = {};
        for (const topic of topics) {
          await connection.execute(
            `INSERT INTO ${topicsTable} (topic, last) VALUES (?, 1) ON DUPLICATE KEY UPDATE last = last + 1`,
            [topic],
          );
          const [rows] = await connection.execute<RowDataPacket[]>(`SELECT last FROM ${topicsTable} WHERE topic = ?`, [
            topic,
          ]);
          seqs[topic] = Number(rows[0]?.['last']);
        }
        const numbered = { ...event, id: randomUUID(), seqs };
        const body = JSON.stringify(numbered);
        for (const topic of topics) {
          const seq = seqs[topic] as number;
          await connection.execute(`INSERT INTO ${eventsTable} (topic, seq, body) VALUES (?, ?, ?)`, [
            topic,
            seq,
            body,
          ]);
          if (seq > keep) {
            await connection.execute(`DELETE FROM ${eventsTable} WHERE topic = ? AND seq <= ?`, [topic, seq - keep]);
            await connection.execute(`UPDATE ${topicsTable} SET dropped = ? WHERE topic = ?`, [seq - keep, topic]);
          }
        }
        await connection.commit();
        return numbered;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        throw error;
      } finally {
        connection.release();
      }
    },
    async since(topic, since) {
      const [state] = await pool.execute<RowDataPacket[]>(`SELECT last, dropped FROM ${topicsTable} WHERE topic = ?`, [
        topic,
      ]);
      const latest = Number(state[0]?.['last'] ?? 0);
      const dropped = Number(state[0]?.['dropped'] ?? 0);
      const [rows] =
        since < latest
          ? await pool.execute<RowDataPacket[]>(
              `SELECT body FROM ${eventsTable} WHERE topic = ? AND seq > ? ORDER BY seq`,
              [topic, since],
            )
          : [[] as RowDataPacket[]];
      return {
        events: rows.map((row) => JSON.parse(String(row['body'])) as ServerEvent),
        latest,
        complete: since >= dropped,
        epoch: `mysql:${prefix}`,
      };
    },
    async close() {},
  };
}
