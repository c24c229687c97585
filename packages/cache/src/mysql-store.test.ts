/** MySqlStore and MySqlIdempotencyStore fail fast and clearly when the server is dead or silent (no MariaDB needed). */
import { createServer, type Server, type Socket } from 'node:net';
import { freePort, listenOnFreePort } from '@cdss/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheUnavailableError } from './errors.js';
import { MySqlIdempotencyStore } from './mysql-idempotency.js';
import { MySqlStore } from './mysql-store.js';

describe('MySQL-backed stores against an unusable server', () => {
  let silent: Server;
  let silentPort = 0;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // Accepts TCP connections and never says a word: the MySQL handshake never comes.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await listenOnFreePort(silent);
    const address = silent.address();
    silentPort = typeof address === 'object' && address ? address.port : 0;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  const bounds = { connectTimeoutMs: 300, queryTimeoutMs: 300, breakerCooldownMs: 100 };

  it('rejects open() with CacheUnavailableError when nothing listens', async () => {
    const port = await freePort();
    const error = await MySqlStore.open({ url: `mysql://u:p@127.0.0.1:${port}/db`, ...bounds }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CacheUnavailableError);
    expect((error as CacheUnavailableError).message).not.toMatch(/u:p/); // no credentials in messages
  });

  it('rejects open() within its bounds when the server never answers', async () => {
    const url = `mysql://u:p@127.0.0.1:${silentPort}/db`;
    await expect(MySqlStore.open({ url, ...bounds })).rejects.toBeInstanceOf(CacheUnavailableError);
    await expect(MySqlIdempotencyStore.open({ url, ...bounds })).rejects.toBeInstanceOf(CacheUnavailableError);
  });
});
