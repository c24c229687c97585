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
  /** Called with a topic whose missed events the server could not replay: re-read what it shows. */
  onResync(listener: (topic: string) => void): () => void;
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
  const resyncListeners = useRef(new Set<(topic: string) => void>());
  const token = session?.token;
  const userId = session?.user.id;

  // Another user signed in: nothing of the last one's stream carries over. (Not on mount: the screens' topics are
  // already waiting.)
  const lastUser = useRef(userId);
  useEffect(() => {
    if (lastUser.current === userId) return;
    lastUser.current = userId;
    setFeed([]);
    setUnread(0);
    topics.current.clear();
  }, [userId]);

  useEffect(() => {
    if (!token) return;
    const events = connectEvents({
      baseUrl,
      getToken: () => token,
      onStatus: setStatus,
      onResync: (topic) => {
        for (const listener of resyncListeners.current) listener(topic);
      },
      onEvent: (event) => {
        for (const listener of listeners.current) listener(event);
        // Progress ticks are for the screen that shows them; the feed keeps what a clinician wants to know.
        if (event.type === 'analysis.progress') return;
        setFeed((old) => [event, ...old].slice(0, FEED_LIMIT));
        setUnread((n) => n + 1);
      },
    });
    stream.current = events;
    // Screens mount before this effect runs (children first), so their topics are waiting here.
    for (const topic of topics.current) events.subscribe(topic, { fromStart: true });
    return () => {
      events.close();
      stream.current = undefined;
    };
  }, [token]);

  // `fromStart`: a screen subscribes right after loading its state, so events from just before still matter (the
  // stream drops any it already delivered).
  const subscribe = useCallback((topic: Topic) => {
    if (topics.current.has(topic)) return;
    topics.current.add(topic);
    stream.current?.subscribe(topic, { fromStart: true });
  }, []);
  const listen = useCallback((listener: (event: ServerEvent) => void) => {
    listeners.current.add(listener);
    return () => void listeners.current.delete(listener);
  }, []);
  const onResync = useCallback((listener: (topic: string) => void) => {
    resyncListeners.current.add(listener);
    return () => void resyncListeners.current.delete(listener);
  }, []);
  const markRead = useCallback(() => setUnread(0), []);
  const value = useMemo(
    () => ({ status, feed, unread, markRead, subscribe, listen, onResync }),
    [status, feed, unread, markRead, subscribe, listen, onResync],
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
 * @param resync - called when events of the topic were missed and could not be replayed (reload the state)
 */
export function useEventListener(
  topic: Topic | undefined,
  listener: (event: ServerEvent) => void,
  resync?: () => void,
): void {
  const { subscribe, listen, onResync } = useEvents();
  const latest = useRef(listener);
  latest.current = listener;
  const latestResync = useRef(resync);
  latestResync.current = resync;
  useEffect(() => {
    if (topic) subscribe(topic);
  }, [topic, subscribe]);
  useEffect(() => listen((event) => latest.current(event)), [listen]);
  useEffect(() => onResync((changed) => changed === topic && latestResync.current?.()), [onResync, topic]);
}
