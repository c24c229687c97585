/**
 * Authentication as strategy objects: the transport asks the strategy to authorise each request and, on a
 * 401, whether fresh credentials are worth one more try. Nothing mutates shared headers.
 * @packageDocumentation
 */
import { z } from 'zod';
import { systemClock, type Clock } from './clock.js';
import { ValidationError } from './errors.js';

/** The request an {@link AuthStrategy} authorises. `headers` is mutable: set the credentials on it. */
export interface AuthRequest {
  /** HTTP method, upper case. */
  method: string;
  /** The request URL, without credentials. */
  url: string;
  /** Request headers; the strategy adds its own (e.g. `authorization`). */
  headers: Record<string, string>;
}

/**
 * How a transport authenticates. Implement it for schemes the toolkit lacks.
 * @category Auth
 */
export interface AuthStrategy {
  /**
   * Adds credentials to the request, e.g. `req.headers['authorization'] = 'Bearer ...'`.
   * @param req - the outgoing request
   */
  authorize(req: AuthRequest): Promise<void>;
  /**
   * Called when a request answered 401. Resolve `true` when credentials were refreshed and the request
   * should be retried (once); `false` to fail with the 401.
   * @param req - the request that was refused, with the headers it carried
   */
  onUnauthorized?(req?: AuthRequest): Promise<boolean>;
}

/**
 * Static bearer token, or a getter called for every request (e.g. reading a token file that rotates).
 * @param tokenOrGetter - the token, or a function returning it
 * @returns the strategy, setting `Authorization: Bearer <token>`
 * @throws {@link ValidationError} when the token is empty
 * @category Auth
 */
export function bearerAuth(tokenOrGetter: string | (() => string | Promise<string>)): AuthStrategy {
  if (typeof tokenOrGetter === 'string' && tokenOrGetter.length === 0) {
    throw new ValidationError('bearerAuth needs a token', [
      { path: 'token', message: 'empty token', code: 'too_small' },
    ]);
  }
  return {
    async authorize(req) {
      const token = typeof tokenOrGetter === 'string' ? tokenOrGetter : await tokenOrGetter();
      req.headers['authorization'] = `Bearer ${token}`;
    },
  };
}

/**
 * HTTP Basic authentication (RFC 7617), as Orthanc uses.
 * @param username - the user name (must not contain `:`)
 * @param password - the password
 * @returns the strategy, setting `Authorization: Basic <base64(username:password)>`
 * @throws {@link ValidationError} when the user name is empty or contains `:`
 * @category Auth
 */
export function basicAuth(username: string, password: string): AuthStrategy {
  if (username.length === 0 || username.includes(':')) {
    throw new ValidationError('basicAuth needs a user name without ":"', [
      { path: 'username', message: 'empty or contains ":"', code: 'invalid_string' },
    ]);
  }
  const header = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  return {
    authorize(req) {
      req.headers['authorization'] = header;
      return Promise.resolve();
    },
  };
}

/** A token as returned by an OAuth2 token endpoint, normalised. */
export interface OAuth2Token {
  /** The access token. */
  accessToken: string;
  /** When it expires, in epoch milliseconds (compare `Date.now()`); absent = until a 401 says otherwise. */
  expiresAt?: number | undefined;
}

/**
 * Fetches access tokens, e.g. by the client-credentials grant against OpenEMR's token endpoint.
 * @category Auth
 */
export interface TokenProvider {
  /** Fetches a fresh token. Called once per refresh, however many requests wait for it. */
  fetchToken(): Promise<OAuth2Token>;
}

/** Options of {@link oauth2Auth}. */
export interface OAuth2AuthOptions {
  /** Time source for expiry checks. Default {@link systemClock}. */
  clock?: Clock;
  /** Refresh this long before `expiresAt`, so a token does not expire in flight. Default 30 000 ms. */
  refreshSkewMs?: number;
}

const tokenSchema = z.object({
  accessToken: z.string().min(1),
  expiresAt: z.number().finite().optional(),
});

/**
 * OAuth2 bearer tokens from a {@link TokenProvider}. The token is cached until shortly before it expires;
 * however many requests need a token at once (first use, expiry, or a burst of 401s), the provider is
 * called ONCE and every caller shares that refresh. A 401 for a token that has already been replaced is
 * retried with the new token without another refresh.
 * @param tokenProvider - where tokens come from
 * @param options - clock and refresh skew
 * @returns the strategy
 * @throws {@link ValidationError} from `authorize` when the provider returns a malformed token
 * @category Auth
 */
export function oauth2Auth(tokenProvider: TokenProvider, options: OAuth2AuthOptions = {}): AuthStrategy {
  const clock = options.clock ?? systemClock;
  const skew = options.refreshSkewMs ?? 30_000;
  let current: OAuth2Token | undefined;
  let refreshing: Promise<OAuth2Token> | undefined;

  const refresh = (): Promise<OAuth2Token> => {
    // Single flight: concurrent callers await the same promise (Medplum's `refreshPromise` pattern).
    refreshing ??= (async () => {
      try {
        const parsed = tokenSchema.safeParse(await tokenProvider.fetchToken());
        if (!parsed.success)
          throw ValidationError.fromZod(parsed.error, 'Invalid OAuth2 token from the token provider');
        current = parsed.data;
        return parsed.data;
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };

  const fresh = (token: OAuth2Token | undefined): token is OAuth2Token =>
    token !== undefined && (token.expiresAt === undefined || clock.now() < token.expiresAt - skew);

  return {
    async authorize(req) {
      const token = fresh(current) && refreshing === undefined ? current : await refresh();
      req.headers['authorization'] = `Bearer ${token.accessToken}`;
    },
    async onUnauthorized(req) {
      const used = req?.headers['authorization'];
      if (refreshing !== undefined) {
        await refreshing;
        return true;
      }
      // Another caller already replaced the token this request used: retry with the new one.
      if (used !== undefined && current !== undefined && used !== `Bearer ${current.accessToken}`) return true;
      current = undefined;
      await refresh();
      return true;
    },
  };
}
