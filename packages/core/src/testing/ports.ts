/**
 * Free loopback ports for tests that must write a port number into a config file (nginx, Prometheus) or restart a
 * process on the same port. Ports come from 20000–31999, below the kernel's ephemeral range (32768+), and never
 * collide with the shared services' ports or with a port this process handed out before.
 */
import { createServer, type Server } from 'node:net';
import { SERVICE_DEFAULTS } from './services.js';

// The shared services' ports, plus the RabbitMQ/EPMD side ports and the alert webhook of scripts/services.
const handedOut = new Set<number>([
  ...Object.values(SERVICE_DEFAULTS).map(({ url }) => Number(new URL(url).port)),
  24242,
  24369,
  25683,
  25684,
  28080,
  29095,
]);

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on 127.0.0.1 in 20000–31999, not handed out before by this process.
 * @throws Error when none is found after 200 tries
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    if (await isFree(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 20000-31999');
}

/**
 * Listens `server` (a `net` or `http` server) on a port from {@link freePort}, trying another port when that one was
 * taken in the meantime (EADDRINUSE).
 * @returns the port it listens on
 * @throws the listen error when it is not EADDRINUSE, or after 5 taken ports
 */
export async function listenOnFreePort(server: Server, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return port;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw error;
    }
  }
}
