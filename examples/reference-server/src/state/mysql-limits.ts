/**
 * Shared counters in MySQL: the webhook replay cache (a signature accepted by one instance is refused by all) and the
 * per-user rate limit (`express-rate-limit` store: one fixed window per user across instances). Per-IP limiting is
 * nginx's job (`limit_req` in deploy/nginx).
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { ClientRateLimitInfo, Options as RateLimitOptions, Store } from 'express-rate-limit';
import type { ReplayCache } from '@cdss/ai-jobs';
import type { MySqlState } from './mysql.js';

/** A {@link ReplayCache} that remembers accepted webhook signatures in MySQL until they leave the window. */
export interface SharedReplayCache extends ReplayCache {
  /** Forgets a signature, so that a delivery that could not be recorded may be sent again. */
  forget(key: string): Promise<void>;
}

/**
 * The webhook replay cache of every instance.
 * @param state - the server's MySQL state
 * @param now - ms since the epoch
 */
export function mySqlReplayCache(state: MySqlState, now: () => number = Date.now): SharedReplayCache {
  return {
    async remember(key, expiresAtMs) {
      // A row past its expiry is taken over; a live one means this signature was accepted already.
      const [result] = await state.pool.execute<ResultSetHeader>(
        `INSERT INTO cdss_webhook_replays (signature, expires_at) VALUES (?, ?)
         ON DUPLICATE KEY UPDATE expires_at = IF(expires_at <= ?, VALUES(expires_at), expires_at)`,
        [key, expiresAtMs, now()],
      );
      // 1: inserted, 2: an expired row taken over, 0: a live row left as it was (a replay)
      return result.affectedRows > 0;
    },
    async forget(key) {
      await state.pool.execute('DELETE FROM cdss_webhook_replays WHERE signature = ?', [key]);
    },
  };
}

/**
 * An `express-rate-limit` store: fixed windows counted in MySQL, so a user's limit holds across instances.
 * @param state - the server's MySQL state
 * @param prefix - keeps this limiter's keys apart from another's
 */
export function mySqlRateLimitStore(state: MySqlState, prefix: string): Store {
  let windowMs = 60_000;
  const { pool } = state;
  const get = async (key: string): Promise<ClientRateLimitInfo | undefined> => {
    const [rows] = await pool.execute<RowDataPacket[]>(
      'SELECT hits, reset_at FROM cdss_rate_limits WHERE rate_key = ? AND reset_at > ?',
      [`${prefix}${key}`, Date.now()],
    );
    const row = rows[0];
    return row ? { totalHits: Number(row['hits']), resetTime: new Date(Number(row['reset_at'])) } : undefined;
  };
  return {
    prefix,
    localKeys: false,
    init(options: RateLimitOptions) {
      windowMs = options.windowMs;
    },
    get,
    async increment(key) {
      const now = Date.now();
      // A new window starts when the last one has ended; otherwise the hit is counted in it.
      await pool.execute(
        `INSERT INTO cdss_rate_limits (rate_key, hits, reset_at) VALUES (?, 1, ?)
         ON DUPLICATE KEY UPDATE hits = IF(reset_at <= ?, 1, hits + 1), reset_at = IF(reset_at <= ?, VALUES(reset_at), reset_at)`,
        [`${prefix}${key}`, now + windowMs, now, now],
      );
      return (await get(key)) ?? { totalHits: 1, resetTime: new Date(now + windowMs) };
    },
    async decrement(key) {
      await pool.execute('UPDATE cdss_rate_limits SET hits = GREATEST(hits - 1, 0) WHERE rate_key = ?', [
        `${prefix}${key}`,
      ]);
    },
    async resetKey(key) {
      await pool.execute('DELETE FROM cdss_rate_limits WHERE rate_key = ?', [`${prefix}${key}`]);
    },
  };
}
