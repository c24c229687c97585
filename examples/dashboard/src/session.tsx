/**
 * The signed-in user. The token lives in memory and in sessionStorage (so a reload keeps the session in this tab
 * only); it never goes into the URL, and it is dropped when it expires or the server answers 401. Two minutes before
 * it expires the user is warned; when it ends, the page they were on is remembered and they return to it after
 * signing in again.
 */
import { createCdssClient, type CdssClient, type DemoUser } from '@cdss/client';
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { can, type Permission } from './permissions';

const STORAGE_KEY = 'cdss.session';
const RETURN_KEY = 'cdss.returnTo';
/** How long before expiry the user is warned. */
export const EXPIRY_WARNING_MS = 2 * 60_000;

/**
 * Remembers the page to come back to after signing in (a path of ids only: no names, nothing from the query).
 * @param path - e.g. `/analyses/123`
 */
export function rememberReturn(path: string): void {
  if (path.startsWith('/') && path !== '/signin' && path !== '/') sessionStorage.setItem(RETURN_KEY, path);
}

/** The remembered page, once (it is forgotten as it is read). */
export function takeReturn(): string | undefined {
  const path = sessionStorage.getItem(RETURN_KEY) ?? undefined;
  sessionStorage.removeItem(RETURN_KEY);
  return path;
}

/** A session: the token, who it belongs to, and when it expires (epoch ms). */
export interface Session {
  token: string;
  user: DemoUser;
  expiresAt: number;
}

function load(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return undefined;
    const session = JSON.parse(raw) as Session;
    return session.expiresAt > Date.now() ? session : undefined;
  } catch {
    return undefined;
  }
}

/** The API base URL: the page's own origin (the server serves the dashboard). */
export const baseUrl = typeof window === 'undefined' ? '' : window.location.origin;

interface SessionContextValue {
  session: Session | undefined;
  /** Milliseconds left when the session is about to expire (for the warning), else undefined. */
  expiresIn: number | undefined;
  /** Why the last session ended, for the sign-in screen. */
  ended: 'expired' | undefined;
  /** Ends the session because it expired (or the server refused the token), remembering where the user was. */
  expire(): void;
  client: CdssClient;
  signIn(session: Session): void;
  signOut(): void;
  can(permission: Permission): boolean;
}

const SessionContext = createContext<SessionContextValue | undefined>(undefined);

/** Provides the session and a client that sends its token. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | undefined>(load);
  const [ended, setEnded] = useState<'expired' | undefined>();
  const [now, setNow] = useState(() => Date.now());
  const signIn = useCallback((next: Session) => {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    setEnded(undefined);
    setSession(next);
  }, []);
  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE_KEY);
    setSession(undefined);
  }, []);
  const expire = useCallback(() => {
    rememberReturn(window.location.pathname);
    sessionStorage.removeItem(STORAGE_KEY);
    setEnded('expired');
    setSession(undefined);
  }, []);
  // A clock for the warning: every second in the last two minutes, otherwise one wake-up when they begin.
  useEffect(() => {
    if (!session) return;
    const left = session.expiresAt - Date.now();
    if (left <= 0) {
      expire();
      return;
    }
    const timer = setTimeout(() => setNow(Date.now()), left > EXPIRY_WARNING_MS ? left - EXPIRY_WARNING_MS : 1_000);
    return () => clearTimeout(timer);
  }, [session, now, expire]);
  const left = session ? session.expiresAt - now : undefined;
  const expiresIn = left !== undefined && left <= EXPIRY_WARNING_MS ? Math.max(0, left) : undefined;
  const client = useMemo(
    () =>
      createCdssClient({
        baseUrl,
        getToken: () => session?.token,
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          // An expired or revoked token: back to the sign-in screen, and then to this page.
          if (response.status === 401 && session) expire();
          return response;
        },
      }),
    [session, expire],
  );
  const value = useMemo<SessionContextValue>(
    () => ({
      session,
      expiresIn,
      ended,
      expire,
      client,
      signIn,
      signOut,
      can: (permission) => can(session?.user.role, permission),
    }),
    [session, expiresIn, ended, expire, client, signIn, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** The session context. */
export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
