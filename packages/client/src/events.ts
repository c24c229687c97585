/**
 * Live events over the server's WebSocket (`/ws`): authenticates with the first message (never the URL), keeps
 * subscriptions across reconnects, and validates every event.
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
}

/** A live event stream. */
export interface EventStream {
  subscribe(topic: `patient:${string}` | `analysis:${string}`): void;
  unsubscribe(topic: string): void;
  close(): void;
}

/**
 * Connects to `/ws`.
 * @param options - server, token source, handlers
 */
export function connectEvents(options: EventStreamOptions): EventStream {
  const topics = new Set<string>();
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

  function open(): void {
    options.onStatus?.('connecting');
    const ws = new Impl(url);
    socket = ws;
    ws.onopen = async () => {
      const token = await options.getToken();
      ws.send(JSON.stringify({ type: 'auth', token: token ?? '' }));
    };
    ws.onmessage = (message) => {
      let data: { type?: string; event?: unknown };
      try {
        data = JSON.parse(String(message.data)) as typeof data;
      } catch {
        return;
      }
      if (data.type === 'ready') {
        ready = true;
        delay = options.reconnectDelayMs ?? 2_000;
        options.onStatus?.('open');
        for (const topic of topics) send({ type: 'subscribe', topic });
      } else if (data.type === 'event') {
        const parsed = serverEventSchema.safeParse(data.event);
        if (parsed.success) options.onEvent(parsed.data);
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
    subscribe(topic) {
      topics.add(topic);
      send({ type: 'subscribe', topic });
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
