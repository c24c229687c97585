/**
 * The signed-in user. The token lives in memory and in sessionStorage (so a reload keeps the session in this tab
 * only); it never goes into the URL, and it is dropped when it expires or the server answers 401.
 */
import { createCdssClient, type CdssClient, type DemoUser } from '@cdss/client';
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { can, type Permission } from './permissions';

const STORAGE_KEY = 'cdss.session';

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
export const baseUrl = window.location.origin;

interface SessionContextValue {
  session: Session | undefined;
  client: CdssClient;
  signIn(session: Session): void;
  signOut(): void;
  can(permission: Permission): boolean;
}

const SessionContext = createContext<SessionContextValue | undefined>(undefined);

/** Provides the session and a client that sends its token. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | undefined>(load);
  const signIn = useCallback((next: Session) => {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    setSession(next);
  }, []);
  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE_KEY);
    setSession(undefined);
  }, []);
  const client = useMemo(
    () =>
      createCdssClient({
        baseUrl,
        getToken: () => session?.token,
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          // An expired or revoked token: back to the sign-in screen.
          if (response.status === 401 && session) signOut();
          return response;
        },
      }),
    [session, signOut],
  );
  const value = useMemo<SessionContextValue>(
    () => ({ session, client, signIn, signOut, can: (permission) => can(session?.user.role, permission) }),
    [session, client, signIn, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** The session context. */
export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
