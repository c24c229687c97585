/**
 * The live event stream of the signed-in user: one WebSocket (authenticated by its first message, never the URL),
 * topics subscribed by the screens that need them, and a feed of what arrived for the notifications screen.
 */
import { connectEvents, type EventStream, type ServerEvent } from '@cdss/client';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { baseUrl, useSession } from './session';

type Topic = `patient:${string}` | `analysis:${string}`;

interface EventsContextValue {
  status: 'connecting' | 'open' | 'closed';
  feed: ServerEvent[];
  unread: number;
  markRead(): void;
  subscribe(topic: Topic): void;
  listen(listener: (event: ServerEvent) => void): () => void;
}

const EventsContext = createContext<EventsContextValue | undefined>(undefined);
const FEED_LIMIT = 100;

/** Opens the stream while someone is signed in. */
export function EventsProvider({ children }: { children: ReactNode }) {
  const { session } = useSession();
  const [status, setStatus] = useState<EventsContextValue['status']>('closed');
  const [feed, setFeed] = useState<ServerEvent[]>([]);
  const [unread, setUnread] = useState(0);
  const stream = useRef<EventStream | undefined>(undefined);
  const topics = useRef(new Set<Topic>());
  const listeners = useRef(new Set<(event: ServerEvent) => void>());
  const token = session?.token;

  useEffect(() => {
    setFeed([]);
    setUnread(0);
    topics.current.clear();
    if (!token) return;
    const events = connectEvents({
      baseUrl,
      getToken: () => token,
      onStatus: setStatus,
      onEvent: (event) => {
        for (const listener of listeners.current) listener(event);
        // Progress ticks are for the screen that shows them; the feed keeps what a clinician wants to know.
        if (event.type === 'analysis.progress') return;
        setFeed((old) => [event, ...old].slice(0, FEED_LIMIT));
        setUnread((n) => n + 1);
      },
    });
    stream.current = events;
    return () => {
      events.close();
      stream.current = undefined;
    };
  }, [token]);

  const subscribe = useCallback((topic: Topic) => {
    if (topics.current.has(topic)) return;
    topics.current.add(topic);
    stream.current?.subscribe(topic);
  }, []);
  const listen = useCallback((listener: (event: ServerEvent) => void) => {
    listeners.current.add(listener);
    return () => void listeners.current.delete(listener);
  }, []);
  const markRead = useCallback(() => setUnread(0), []);
  const value = useMemo(
    () => ({ status, feed, unread, markRead, subscribe, listen }),
    [status, feed, unread, markRead, subscribe, listen],
  );
  return <EventsContext.Provider value={value}>{children}</EventsContext.Provider>;
}

/** The event stream context. */
export function useEvents(): EventsContextValue {
  const value = useContext(EventsContext);
  if (!value) throw new Error('useEvents outside EventsProvider');
  return value;
}

/**
 * Subscribes to a topic and calls the listener for each event of the stream while mounted.
 * @param topic - `patient:<id>` or `analysis:<id>`, or undefined for none
 * @param listener - called with every event (filter by patientId/analysisId)
 */
export function useEventListener(topic: Topic | undefined, listener: (event: ServerEvent) => void): void {
  const { subscribe, listen } = useEvents();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => {
    if (topic) subscribe(topic);
  }, [topic, subscribe]);
  useEffect(() => listen((event) => latest.current(event)), [listen]);
}
