/**
 * The RabbitMQ transport (amqplib 2): durable topology declared idempotently, persistent messages with publisher
 * confirms, per-consumer prefetch, reconnection with backoff that re-declares the topology and resumes consumers.
 *
 * Delivery guarantees: at least once. A delivery is acknowledged only when its handler settles it (after the job
 * state is recorded); deliveries unsettled when a connection dies are redelivered by the broker, so every consumer
 * must be idempotent (the job store is). A publish resolves only after the broker's confirm; a publish that was in
 * flight when the connection died is sent again after reconnecting (so it may arrive twice, never zero times).
 * @packageDocumentation
 */
import { Writable } from 'node:stream';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { z } from 'zod';
import { CdssError, TimeoutError, ValidationError } from '@cdss/core';
import { errorSummary, redactUrl, silentLogger, type JobLogger } from './logger.js';
import {
  ATTEMPT_HEADER,
  DEAD_LETTER_DETAIL_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTER_SOURCE_HEADER,
  WORK_ROUTING_KEY,
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

/** Options of {@link AmqpTransport}. */
export interface AmqpTransportOptions extends TopologyOptions {
  /** `amqp://user:pass@host:port/vhost`. Required. */
  url: string;
  /** Reconnect backoff: first delay (default 100 ms), doubling up to `maxDelayMs` (default 5000 ms), ±20 % jitter. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * How long a publish may wait for a connection and the broker's confirm, across reconnects, before it fails
   * with a `TimeoutError` (`@cdss/core`). Default 120 000 ms.
   */
  publishTimeoutMs?: number;
  /** AMQP heartbeat in seconds (default 10): how fast a silently dead connection is noticed. */
  heartbeatSeconds?: number;
  /** Default: silent. Receives connection events, never message bodies. */
  logger?: JobLogger;
}

const optionsSchema = z.object({
  url: z.string().regex(/^amqps?:\/\//, 'must be an amqp:// or amqps:// URL'),
  reconnect: z
    .object({ initialDelayMs: z.int().min(1).default(100), maxDelayMs: z.int().min(1).default(5000) })
    .prefault({}),
  publishTimeoutMs: z.int().min(1).default(120_000),
  heartbeatSeconds: z.int().min(0).default(10),
});

interface ConsumerSpec {
  kind: 'work' | 'events' | 'control';
  handler: DeliveryHandler;
  prefetch: number;
  cancelled: boolean;
  channel?: Channel;
  tag?: string;
  generation: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Makes the frames amqplib writes in one turn of the event loop leave in one `writev` instead of one syscall each.
 * amqplib's multiplexer writes every frame group (a publish, an ack) to the socket separately; with Nagle off
 * (`noDelay`) each is its own syscall and TCP segment, which cost this process and the broker more CPU per job than
 * the protocol work. Corking until the next tick only joins writes that were already issued together: nothing waits
 * for later traffic, so latency is unchanged. Reaches `connection.stream` (amqplib's socket): typed in amqplib's
 * `Connection` as an untyped internal, so this checks its shape and does nothing when it differs.
 */
function coalesceWrites(conn: ChannelModel): void {
  const stream: unknown = (conn.connection as unknown as { stream?: unknown }).stream;
  if (!(stream instanceof Writable)) return;
  const write = stream.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    stream.uncork();
  };
  stream.write = function (this: Writable, ...args: Parameters<Writable['write']>): boolean {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Writable['write'];
}

/**
 * Acknowledgements of one consumer channel, coalesced per event-loop turn: the acks of a run of consecutive
 * deliveries (in delivery-tag order, nothing unsettled in between) go as one `basic.ack` with `multiple`, the others
 * one by one. Every ack still follows its own handler's settle; it only leaves at the end of the turn, so the broker
 * handles one frame for a run instead of one per message. A nack (requeue) leaves at once.
 */
interface AckEntry {
  readonly msg: ConsumeMessage;
  /** Settled by its handler (ack, or a nack already sent). */
  acked: boolean;
  /** Its frame has left (a nack, or an ack sent on its own). */
  sent: boolean;
}

class AckBatcher {
  /** Deliveries not settled at the last flush, in delivery-tag order (the order the channel delivered them). */
  readonly #open: AckEntry[] = [];
  #scheduled = false;

  constructor(
    private readonly channel: Channel,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Registers a delivery as it arrives. */
  track(msg: ConsumeMessage): AckEntry {
    const entry: AckEntry = { msg, acked: false, sent: false };
    this.#open.push(entry);
    return entry;
  }

  ack(entry: AckEntry): void {
    entry.acked = true;
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(() => this.#flush());
    }
  }

  /** A nack leaves at once; its slot counts as settled for the runs around it. */
  settleOther(entry: AckEntry, action: () => void): void {
    entry.acked = true;
    entry.sent = true;
    action();
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const open = this.#open;
    // the run of settled deliveries at the front: one multiple-ack up to its last one not sent yet. A multiple-ack
    // covers only deliveries still outstanding, so a nacked one in the run (its nack left first) is not touched.
    let i = 0;
    let lastUnsent: ConsumeMessage | undefined;
    while (i < open.length && open[i]!.acked) {
      if (!open[i]!.sent) lastUnsent = open[i]!.msg;
      i++;
    }
    try {
      if (lastUnsent) this.channel.ack(lastUnsent, true);
      // acked ones behind an unsettled delivery (a long job) go one by one, now, rather than wait for it
      for (let j = i; j < open.length; j++) {
        const e = open[j]!;
        if (e.acked && !e.sent) {
          e.sent = true;
          this.channel.ack(e.msg);
        }
      }
    } catch (error) {
      this.onError(error);
    }
    // keep only the unsettled ones, in order: at most the prefetch
    let w = 0;
    for (let j = i; j < open.length; j++) if (!open[j]!.acked) open[w++] = open[j]!;
    open.length = w;
  }
}

class AmqpDelivery implements Delivery {
  readonly body: Buffer;
  readonly messageId: string | undefined;
  readonly type: string | undefined;
  readonly correlationId: string | undefined;
  readonly priority: number;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly redelivered: boolean;
  readonly attempt: number;
  #settled = false;
  readonly #entry: AckEntry;

  constructor(
    private readonly transport: AmqpTransport,
    private readonly channel: Channel,
    private readonly msg: ConsumeMessage,
    private readonly source: string,
    private readonly acks: AckBatcher,
  ) {
    this.#entry = acks.track(msg);
    const p = msg.properties;
    this.body = msg.content;
    this.messageId = typeof p.messageId === 'string' ? p.messageId : undefined;
    this.type = typeof p.type === 'string' ? p.type : undefined;
    this.correlationId = typeof p.correlationId === 'string' ? p.correlationId : undefined;
    this.priority = typeof p.priority === 'number' ? p.priority : 0;
    this.headers = (p.headers ?? {}) as Record<string, unknown>;
    this.redelivered = msg.fields.redelivered;
    this.attempt = attemptOf(this.headers);
  }

  /** Acks leave at the end of the turn (see {@link AckBatcher}); on a dead channel the broker has already requeued. */
  async ack(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    this.acks.ack(this.#entry);
  }

  async requeue(): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    this.acks.settleOther(this.#entry, () => {
      try {
        this.channel.nack(this.msg, false, true);
      } catch (error) {
        this.transport.logStale(error);
      }
    });
  }

  async retry(index: number): Promise<void> {
    if (this.#settled) return;
    await this.transport.publishRetryCopy(this.msg, this.attempt + 1, index);
    await this.ack();
  }

  async deadLetter(reason: DeadLetterReason, detail: string): Promise<void> {
    if (this.#settled) return;
    await this.transport.publishDeadLetter(this.msg, this.source, reason, detail);
    await this.ack();
  }
}

/**
 * A {@link JobTransport} on RabbitMQ.
 * @example
 * ```ts
 * const transport = new AmqpTransport({ url: 'amqp://ci:ci-pass@127.0.0.1:25682' });
 * await transport.start();
 * ```
 */
export class AmqpTransport implements JobTransport {
  readonly retryDelaysMs: readonly number[];
  readonly #names: ReturnType<typeof topologyNames>;
  readonly #opts: z.infer<typeof optionsSchema>;
  readonly #log: JobLogger;
  readonly #consumers = new Set<ConsumerSpec>();
  #conn: ChannelModel | undefined;
  #pub: ConfirmChannel | undefined;
  #ready: Deferred = deferred();
  #closed = false;
  #started = false;
  #reconnecting = false;
  #generation = 0;
  #drain: Promise<void> | undefined;

  /**
   * @param options - see {@link AmqpTransportOptions}
   * @throws `ValidationError` (`@cdss/core`) for bad options
   */
  constructor(options: AmqpTransportOptions) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'invalid AmqpTransport options');
    const topo = topologyOptionsSchema.safeParse(options);
    if (!topo.success) throw ValidationError.fromZod(topo.error, 'invalid topology options');
    this.#opts = parsed.data;
    this.retryDelaysMs = topo.data.retryDelaysMs;
    this.#names = topologyNames(topo.data.prefix, topo.data.retryDelaysMs);
    this.#log = options.logger ?? silentLogger;
  }

  /** The exchange and queue names this transport declares. */
  get names(): Readonly<ReturnType<typeof topologyNames>> {
    return this.#names;
  }

  /** True while connected. */
  get connected(): boolean {
    return this.#pub !== undefined;
  }

  /**
   * Connects and declares the topology. Fails if the first connection fails (a wrong URL should be loud);
   * after that, connection losses are repaired in the background.
   * @throws the connection or declaration error
   */
  async start(): Promise<void> {
    if (this.#closed) throw new CdssError('transport is closed', { code: 'TRANSPORT_CLOSED' });
    if (this.#started) return this.#ready.promise;
    this.#started = true;
    try {
      await this.#setup();
    } catch (error) {
      this.#started = false;
      throw error;
    }
  }

  async #setup(): Promise<void> {
    const url = new URL(this.#opts.url);
    url.searchParams.set('heartbeat', String(this.#opts.heartbeatSeconds));
    // noDelay: job traffic is many small request/confirm round trips, which Nagle's algorithm would hold back
    const conn = await amqp.connect(url.toString(), {
      noDelay: true,
      clientProperties: { connection_name: 'cdss-ai-jobs' },
    });
    try {
      coalesceWrites(conn);
      conn.on('error', (error: Error) => this.#log.warn({ err: errorSummary(error) }, 'amqp connection error'));
      const pub = await conn.createConfirmChannel();
      pub.on('error', (error: Error) => this.#log.warn({ err: errorSummary(error) }, 'amqp publish channel error'));
      await this.#declare(pub);
      const generation = ++this.#generation;
      this.#conn = conn;
      this.#pub = pub;
      this.#drain = undefined;
      conn.on('close', () => this.#lost(generation));
      pub.on('close', () => {
        // a channel-level error (e.g. a declaration mismatch) closes only the channel: rebuild everything
        if (this.#generation === generation && !this.#closed) void conn.close().catch(() => {});
      });
      for (const spec of this.#consumers) if (!spec.cancelled) await this.#startConsumer(spec, conn, generation);
      this.#log.info({ url: redactUrl(this.#opts.url), generation }, 'amqp connected');
      this.#ready.resolve();
    } catch (error) {
      await conn.close().catch(() => {});
      throw error;
    }
  }

  /** Idempotent: asserting what exists with the same arguments is a no-op. */
  async #declare(ch: Channel): Promise<void> {
    const n = this.#names;
    await ch.assertExchange(n.workExchange, 'direct', { durable: true });
    await ch.assertExchange(n.deadExchange, 'fanout', { durable: true });
    await ch.assertExchange(n.eventsExchange, 'topic', { durable: true });
    await ch.assertQueue(n.deadQueue, { durable: true });
    await ch.bindQueue(n.deadQueue, n.deadExchange, '');
    await ch.assertQueue(n.workQueue, { durable: true, maxPriority: 10, deadLetterExchange: n.deadExchange });
    await ch.bindQueue(n.workQueue, n.workExchange, WORK_ROUTING_KEY);
    for (const [i, q] of n.retryQueues.entries()) {
      // one queue per delay: per-message TTLs in one queue expire only at its head (services.md pitfall 10)
      await ch.assertQueue(q, {
        durable: true,
        messageTtl: this.retryDelaysMs[i]!,
        deadLetterExchange: n.workExchange,
        deadLetterRoutingKey: WORK_ROUTING_KEY,
      });
    }
    await ch.assertQueue(n.eventsQueue, { durable: true, deadLetterExchange: n.deadExchange });
    await ch.bindQueue(n.eventsQueue, n.eventsExchange, 'job.#');
  }

  #lost(generation: number): void {
    if (generation !== this.#generation) return;
    this.#conn = undefined;
    this.#pub = undefined;
    for (const spec of this.#consumers) {
      delete spec.channel;
      delete spec.tag;
    }
    if (this.#closed) return;
    this.#ready = deferred();
    this.#log.warn({ generation }, 'amqp connection lost; reconnecting');
    void this.#reconnectLoop();
  }

  async #reconnectLoop(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    let delay = this.#opts.reconnect.initialDelayMs;
    try {
      while (!this.#closed) {
        await sleep(delay * (0.8 + Math.random() * 0.4));
        if (this.#closed) return;
        try {
          await this.#setup();
          return;
        } catch (error) {
          this.#log.warn({ err: errorSummary(error), nextDelayMs: delay }, 'amqp reconnect failed');
          delay = Math.min(delay * 2, this.#opts.reconnect.maxDelayMs);
        }
      }
    } finally {
      this.#reconnecting = false;
    }
  }

  async #startConsumer(spec: ConsumerSpec, conn: ChannelModel, generation: number): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (error: Error) =>
      this.#log.warn({ err: errorSummary(error), kind: spec.kind }, 'amqp consumer channel error'),
    );
    ch.on('close', () => {
      // e.g. the broker's consumer_timeout closed it: rebuild the connection so the consumer comes back
      if (this.#generation === generation && !this.#closed && !spec.cancelled) void conn.close().catch(() => {});
    });
    await ch.prefetch(spec.prefetch);
    let queue: string;
    if (spec.kind === 'control') {
      const q = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await ch.bindQueue(q.queue, this.#names.eventsExchange, 'control.#');
      queue = q.queue;
    } else {
      queue = spec.kind === 'work' ? this.#names.workQueue : this.#names.eventsQueue;
    }
    const acks = new AckBatcher(ch, (error) => this.logStale(error));
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (!msg) return; // cancelled by the broker (queue deleted); the next reconnect re-declares it
      const delivery = new AmqpDelivery(this, ch, msg, queue, acks);
      spec.handler(delivery).catch((error: unknown) => {
        this.#log.warn(
          { err: errorSummary(error), kind: spec.kind },
          'delivery handler failed; handing the message back',
        );
        void delivery.requeue();
      });
    });
    spec.channel = ch;
    spec.tag = consumerTag;
    spec.generation = generation;
  }

  async #addConsumer(kind: ConsumerSpec['kind'], handler: DeliveryHandler, prefetch: number): Promise<Consumer> {
    if (this.#closed) throw new CdssError('transport is closed', { code: 'TRANSPORT_CLOSED' });
    const spec: ConsumerSpec = { kind, handler, prefetch: Math.max(1, prefetch), cancelled: false, generation: 0 };
    this.#consumers.add(spec);
    if (this.#conn && this.#pub) await this.#startConsumer(spec, this.#conn, this.#generation);
    return {
      cancel: async () => {
        spec.cancelled = true;
        this.#consumers.delete(spec);
        if (spec.channel && spec.tag) await spec.channel.cancel(spec.tag).catch(() => {});
      },
    };
  }

  async consumeRequests(handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    return this.#addConsumer('work', handler, options.prefetch);
  }

  async consumeEvents(handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    return this.#addConsumer('events', handler, options.prefetch);
  }

  async consumeControl(handler: DeliveryHandler): Promise<Consumer> {
    return this.#addConsumer('control', handler, 100);
  }

  /** Waits for a live publish channel, up to the deadline. */
  async #channel(deadline: number): Promise<ConfirmChannel> {
    for (;;) {
      if (this.#closed) throw new CdssError('transport is closed', { code: 'TRANSPORT_CLOSED' });
      if (this.#pub) return this.#pub;
      if (!this.#started)
        throw new CdssError('transport not started: call start() first', { code: 'TRANSPORT_NOT_STARTED' });
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError('no broker connection to publish on', this.#opts.publishTimeoutMs);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#ready.promise,
        new Promise<void>((r) => (timer = setTimeout(r, Math.min(left, 1000)))),
      ]);
      clearTimeout(timer);
    }
  }

  /** Publishes and waits for the broker's confirm, publishing again after a reconnect until confirmed. */
  async #publish(exchange: string, routingKey: string, body: Buffer, props: Options.Publish): Promise<void> {
    const deadline = Date.now() + this.#opts.publishTimeoutMs;
    for (;;) {
      // the common case (connected, socket not backed up) without the extra awaits of the slow path
      let ch = this.#closed || this.#drain ? undefined : this.#pub;
      if (ch === undefined) {
        ch = await this.#channel(deadline);
        if (this.#drain) await this.#drain;
      }
      try {
        await new Promise<void>((resolve, reject) => {
          const ok = ch.publish(exchange, routingKey, body, props, (err: unknown) =>
            err
              ? reject(
                  err instanceof Error
                    ? err
                    : new CdssError('publish nacked by the broker', { code: 'PUBLISH_NACKED' }),
                )
              : resolve(),
          );
          if (!ok && !this.#drain) {
            this.#drain = new Promise<void>((r) => ch.once('drain', () => r())).finally(
              () => (this.#drain = undefined),
            );
          }
        });
        return;
      } catch (error) {
        if (this.#closed) throw error;
        if (Date.now() >= deadline)
          throw new TimeoutError('publish not confirmed in time', this.#opts.publishTimeoutMs, { cause: error });
        this.#log.debug({ err: errorSummary(error) }, 'publish not confirmed; publishing again after reconnect');
        await sleep(50);
      }
    }
  }

  #props(message: OutgoingMessage): Options.Publish {
    return {
      persistent: true,
      contentType: 'application/json',
      messageId: message.messageId,
      type: message.type,
      ...(message.correlationId === undefined ? {} : { correlationId: message.correlationId }),
      priority: Math.max(0, Math.min(9, message.priority ?? 0)),
      appId: 'cdss-ai-jobs',
      timestamp: Math.floor(Date.now() / 1000),
      headers: { ...message.headers },
    };
  }

  async publishRequest(message: OutgoingMessage): Promise<void> {
    await this.#publish(this.#names.workExchange, WORK_ROUTING_KEY, message.body, this.#props(message));
  }

  async publishEvent(routingKey: string, message: OutgoingMessage): Promise<void> {
    await this.#publish(this.#names.eventsExchange, routingKey, message.body, this.#props(message));
  }

  #copyProps(msg: ConsumeMessage, headers: Record<string, unknown>): Options.Publish {
    const p = msg.properties;
    const out: Options.Publish = { persistent: true, headers: { ...(p.headers ?? {}), ...headers } };
    if (p.contentType) out.contentType = p.contentType as string;
    if (p.messageId) out.messageId = p.messageId as string;
    if (p.type) out.type = p.type as string;
    if (p.correlationId) out.correlationId = p.correlationId as string;
    if (typeof p.priority === 'number') out.priority = p.priority;
    if (p.appId) out.appId = p.appId as string;
    if (p.timestamp) out.timestamp = p.timestamp as number;
    return out;
  }

  /** @internal */
  async publishRetryCopy(msg: ConsumeMessage, attempt: number, index: number): Promise<void> {
    const i = Math.max(0, Math.min(index, this.#names.retryQueues.length - 1));
    // the default exchange routes straight to the retry queue; its TTL then dead-letters it to the work exchange
    await this.#publish(
      '',
      this.#names.retryQueues[i]!,
      msg.content,
      this.#copyProps(msg, { [ATTEMPT_HEADER]: attempt }),
    );
  }

  /** @internal */
  async publishDeadLetter(
    msg: ConsumeMessage,
    source: string,
    reason: DeadLetterReason,
    detail: string,
  ): Promise<void> {
    await this.#publish(
      this.#names.deadExchange,
      '',
      msg.content,
      this.#copyProps(msg, {
        [DEAD_LETTER_REASON_HEADER]: reason,
        [DEAD_LETTER_DETAIL_HEADER]: detail.slice(0, 500),
        [DEAD_LETTER_SOURCE_HEADER]: source,
      }),
    );
  }

  /** @internal */
  logStale(error: unknown): void {
    this.#log.debug({ err: errorSummary(error) }, 'settling a delivery of a closed channel: the broker redelivers it');
  }

  async #withTempChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    const conn = this.#conn;
    if (!conn) throw new CdssError('not connected', { code: 'TRANSPORT_DISCONNECTED' });
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => {});
    }
  }

  async takeDeadLetters(max: number): Promise<DeadLetter[]> {
    return this.#withTempChannel(async (ch) => {
      const out: DeadLetter[] = [];
      while (out.length < max) {
        const m = await ch.get(this.#names.deadQueue, { noAck: false });
        if (!m) break;
        const h = (m.properties.headers ?? {}) as Record<string, unknown>;
        const str = (v: unknown): string | undefined =>
          v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
        out.push({
          body: m.content,
          messageId: typeof m.properties.messageId === 'string' ? m.properties.messageId : undefined,
          reason: str(h[DEAD_LETTER_REASON_HEADER]),
          detail: str(h[DEAD_LETTER_DETAIL_HEADER]),
          source: str(h[DEAD_LETTER_SOURCE_HEADER]),
          headers: h,
        });
        ch.ack(m);
      }
      return out;
    });
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
            : n.retryQueues[this.retryDelaysMs.indexOf(Number(queue.slice('retry:'.length)))];
    if (name === undefined) throw new CdssError(`no such queue: ${queue}`, { code: 'NO_SUCH_QUEUE' });
    return this.#withTempChannel(async (ch) => (await ch.checkQueue(name)).messageCount);
  }

  /** Deletes this transport's exchanges and queues (tests and teardown only). */
  async deleteTopology(): Promise<void> {
    const n = this.#names;
    await this.#withTempChannel(async (ch) => {
      for (const q of [n.workQueue, n.eventsQueue, n.deadQueue, ...n.retryQueues]) await ch.deleteQueue(q);
      for (const e of [n.workExchange, n.eventsExchange, n.deadExchange]) await ch.deleteExchange(e);
    });
  }

  /**
   * Cancels consumers, closes their channels (the broker requeues unsettled deliveries) and the connection.
   * Call the job worker's `stop()` first to let in-flight jobs finish.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready.reject(new CdssError('transport is closed', { code: 'TRANSPORT_CLOSED' }));
    for (const spec of this.#consumers) {
      spec.cancelled = true;
      if (spec.channel) await spec.channel.close().catch(() => {});
    }
    this.#consumers.clear();
    const conn = this.#conn;
    this.#conn = undefined;
    this.#pub = undefined;
    if (conn) await conn.close().catch(() => {});
  }
}
