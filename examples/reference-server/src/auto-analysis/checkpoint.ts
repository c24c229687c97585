/**
 * Where a change-feed follower keeps its place: the `Seq` of the last change it finished. A JSON file in sandbox mode,
 * a MySQL row in connected mode (shared by every server instance).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';

/** A named checkpoint store. */
export interface CheckpointStore {
  /** @returns the saved sequence number, or undefined when the follower never ran */
  load(name: string): Promise<number | undefined>;
  save(name: string, seq: number): Promise<void>;
}

/** Decides which server instance follows a feed (only one should), so N instances behave as one. */
export interface FollowerLease {
  /** Tries to become the follower; true when this instance is (or already was) the follower. */
  acquire(): Promise<boolean>;
  /** Gives the role up (on shutdown). */
  release(): Promise<void>;
}

/**
 * Checkpoints in a JSON file, written atomically.
 * @param file - the file (created when missing)
 */
export function createFileCheckpoints(file: string): CheckpointStore {
  const schema = z.record(z.string(), z.number().int().nonnegative());
  let writing = Promise.resolve();
  const read = async (): Promise<Record<string, number>> => {
    try {
      return schema.parse(JSON.parse(await readFile(file, 'utf8')));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
  };
  return {
    async load(name) {
      return (await read())[name];
    },
    async save(name, seq) {
      writing = writing.then(async () => {
        const all = { ...(await read()), [name]: seq };
        await mkdir(dirname(file), { recursive: true });
        await writeFile(`${file}.tmp`, JSON.stringify(all), { mode: 0o600 });
        await rename(`${file}.tmp`, file);
      });
      await writing;
    },
  };
}

/**
 * Checkpoints in MySQL/MariaDB (table created when missing).
 * @param pool - a mysql2 promise pool (not closed here)
 * @param table - table name
 */
export async function createMySqlCheckpoints(pool: Pool, table = 'cdss_checkpoints'): Promise<CheckpointStore> {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,47}$/.test(table)) throw new Error(`invalid table name ${table}`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${table} (name VARCHAR(100) NOT NULL PRIMARY KEY, seq BIGINT NOT NULL,
     updated_at BIGINT NOT NULL) ENGINE=InnoDB`,
  );
  return {
    async load(name) {
      const [rows] = await pool.execute<RowDataPacket[]>(`SELECT seq FROM ${table} WHERE name = ?`, [name]);
      return rows[0] ? Number(rows[0]['seq']) : undefined;
    },
    async save(name, seq) {
      await pool.execute(
        `INSERT INTO ${table} (name, seq, updated_at) VALUES (?, ?, ?)
         ON DUPLICATE KEY UPDATE seq = VALUES(seq), updated_at = VALUES(updated_at)`,
        [name, seq, Date.now()],
      );
    },
  };
}

/** One process is always the follower (sandbox, a single instance). */
export const soleFollower: FollowerLease = { acquire: async () => true, release: async () => undefined };

/**
 * A lease on a MySQL named lock (`GET_LOCK`), held by a dedicated connection: when the holding instance dies, its
 * connection closes and another instance takes over at its next `acquire()`.
 * @param pool - a mysql2 promise pool
 * @param name - the lock name
 */
export function mySqlFollowerLease(pool: Pool, name: string): FollowerLease {
  let held: PoolConnection | undefined;
  return {
    async acquire() {
      if (held) {
        try {
          await held.query('SELECT 1');
          return true;
        } catch {
          held.destroy();
          held = undefined;
        }
      }
      const connection = await pool.getConnection();
      try {
        const [rows] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [name]);
        if (Number(rows[0]?.['got']) === 1) {
          held = connection;
          return true;
        }
      } catch {
        // fall through: not the follower this time
      }
      connection.release();
      return false;
    },
    async release() {
      if (!held) return;
      await held.query('SELECT RELEASE_LOCK(?)', [name]).catch(() => undefined);
      held.release();
      held = undefined;
    },
  };
}
