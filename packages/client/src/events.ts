/**
 * Live events over the server's WebSocket (`/ws`): authenticates with the first message (never the URL), sends the
 * subscriptions again after every `ready`, and on a reconnect asks for what it missed: the server numbers events per
 * topic (`seqs`) and replays a topic's events above the `since` the client sends, so no event is lost and none is
 * delivered twice. When the server can no longer replay (its log was trimmed or restarted), `onResync` tells the
 * application to read the state again.
 */
import { serverEventSchema, type ServerEvent } from './schemas.js';

/** The part of the WebSocket API the client uses (browsers, React Native and the `ws` package provide it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** Options of {@link connectEvents}. */
export interface EventStreamOptions {
  /** The server, e.g. `https://cdss.example.org`; `/ws` is appended with the ws(s) scheme. */
  baseUrl: string;
  getToken: () => string | undefined | Promise<string | undefined>;
  /** WebSocket constructor (default: the global one). */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Called for every event the user may see. */
  onEvent: (event: ServerEvent) => void;
  /** Connection state changes. */
  onStatus?: (status: 'connecting' | 'open' | 'closed') => void;
  /** Delay before reconnecting (default 2 s; doubled up to 30 s). */
  reconnectDelayMs?: number;
  /**
   * Called when events of a topic may have been missed and cannot be replayed: re-read what the topic shows.
   * @param topic - e.g. `analysis:123`
   */
  onResync?: (topic: string) => void;
}

/** Where the client stands in a topic. */
interface TopicPosition {
  /** The highest event number received (undefined until the server told it). */
  seq?: number;
  epoch?: string;
  /** Replay everything the server still holds on the first subscription (for screens opened by a deep link). */
  fromStart: boolean;
}

/** A live event stream. */
export interface EventStream {
  /**
   * Subscribes to a topic (again after every reconnect, asking for what was missed).
   * @param topic - `patient:<id>` or `analysis:<id>`
   * @param options - `fromStart`: also deliver the events the server still holds from before this call, so that a
   *   screen that loaded its state just now misses nothing that happened in between
   */
  subscribe(topic: `patient:${string}` | `analysis:${string}`, options?: { fromStart?: boolean }): void;
  unsubscribe(topic: string): void;
  close(): void;
}

/**
 * Connects to `/ws`.
 * @param options - server, token source, handlers
 */
export function connectEvents(options: EventStreamOptions): EventStream {
  const topics = new Map<string, TopicPosition>();
  const Impl =
    options.WebSocket ?? (globalThis as unknown as { WebSocket: new (url: string) => WebSocketLike }).WebSocket;
  const url = `${options.baseUrl.replace(/\/$/, '').replace(/^http/, 'ws')}/ws`;
  let socket: WebSocketLike | undefined;
  let closed = false;
  let ready = false;
  let delay = options.reconnectDelayMs ?? 2_000;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const send = (message: unknown): void => {
    if (socket && ready) socket.send(JSON.stringify(message));
  };
  const sendSubscribe = (topic: string, position: TopicPosition): void => {
    const since = position.seq ?? (position.fromStart ? 0 : undefined);
    send({
      type: 'subscribe',
      topic,
      ...(since !== undefined ? { since } : {}),
      ...(position.seq !== undefined && position.epoch ? { epoch: position.epoch } : {}),
    });
  };
  /** True when the event is new in at least one subscribed topic (and records it). */
  const isNew = (event: ServerEvent): boolean => {
    if (!event.seqs) return true;
    let fresh = false;
    let known = false;
    for (const [topic, seq] of Object.entries(event.seqs)) {
      const position = topics.get(topic);
      if (!position) continue;
      known = true;
      if (position.seq === undefined || seq > position.seq) {
        position.seq = seq;
        fresh = true;
      }
    }
    return fresh || !known;
  };

  function open(): void {
    options.onStatus?.('connecting');
    const ws = new Impl(url);
    socket = ws;
    ws.onopen = async () => {
      const token = await options.getToken();
      ws.send(JSON.stringify({ type: 'auth', token: token ?? '' }));
    };
    ws.onmessage = (message) => {
      let data: { type?: string; event?: unknown; topic?: string; seq?: number; epoch?: string; complete?: boolean };
      try {
        data = JSON.parse(String(message.data)) as typeof data;
      } catch {
        return;
      }
      if (data.type === 'ready') {
        ready = true;
        delay = options.reconnectDelayMs ?? 2_000;
        options.onStatus?.('open');
        for (const [topic, position] of topics) sendSubscribe(topic, position);
      } else if (data.type === 'subscribed' && data.topic) {
        const position = topics.get(data.topic);
        if (!position) return;
        const lost = data.complete === false || (position.epoch !== undefined && data.epoch !== position.epoch);
        if (data.epoch) position.epoch = data.epoch;
        if (typeof data.seq === 'number' && (lost || position.seq === undefined || data.seq > position.seq))
          position.seq = data.seq;
        if (lost) options.onResync?.(data.topic);
      } else if (data.type === 'event') {
        const parsed = serverEventSchema.safeParse(data.event);
        if (parsed.success && isNew(parsed.data)) options.onEvent(parsed.data);
      }
    };
    ws.onclose = () => {
      ready = false;
      options.onStatus?.('closed');
      if (closed) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    };
    ws.onerror = () => undefined;
  }
  open();

  return {
    subscribe(topic, subscribeOptions = {}) {
      if (topics.has(topic)) return;
      const position: TopicPosition = { fromStart: subscribeOptions.fromStart ?? false };
      topics.set(topic, position);
      sendSubscribe(topic, position);
    },
    unsubscribe(topic) {
      topics.delete(topic);
      send({ type: 'unsubscribe', topic });
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      socket?.close(1000, 'client closed');
    },
  };
}
