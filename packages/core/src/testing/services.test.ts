import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService, SERVICE_DEFAULTS } from './services.js';
import { listenOnFreePort } from './ports.js';

let server: Server;
let port = 0;
beforeAll(async () => {
  server = createServer((socket) => socket.end());
  await listenOnFreePort(server);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  port = address.port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A loopback port that nothing listens on: bind one, read its number, close it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await listenOnFreePort(probe);
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('requireService', () => {
  it('finds a service listening at the URL from its environment variable', async () => {
    const env = SERVICE_DEFAULTS.rabbitmq.env;
    process.env[env] = `amqp://ci:ci-pass@127.0.0.1:${port}`;
    try {
      const probe = await requireService('rabbitmq', { ci: false });
      expect(probe).toEqual({ name: 'rabbitmq', url: `amqp://ci:ci-pass@127.0.0.1:${port}`, available: true });
    } finally {
      Reflect.deleteProperty(process.env, env);
    }
  });

  it('outside CI, reports a missing service with one line saying how to start it', async () => {
    const env = SERVICE_DEFAULTS.orthanc.env;
    process.env[env] = `http://127.0.0.1:${await closedPort()}`;
    const lines: string[] = [];
    try {
      const probe = await requireService('orthanc', { ci: false, log: (l) => lines.push(l) });
      expect(probe.available).toBe(false);
      expect(probe.reason).toMatch(/npm run services -- start orthanc/);
      expect(lines).toEqual([`[skip] ${probe.reason}`]);
    } finally {
      Reflect.deleteProperty(process.env, env);
    }
  });

  it('under CI, a missing service fails', async () => {
    const env = SERVICE_DEFAULTS['hapi-fhir'].env;
    process.env[env] = `http://127.0.0.1:${await closedPort()}/fhir`;
    try {
      await expect(requireService('hapi-fhir', { ci: true })).rejects.toThrow(/CI=true and hapi-fhir is not running/);
    } finally {
      Reflect.deleteProperty(process.env, env);
    }
  });
});
