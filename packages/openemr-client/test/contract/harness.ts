/**
 * The contract harness: the sandbox's OpenEMR emulator behind a real Express server on 127.0.0.1:0, with
 * every exchange captured. The 8.2 profile (the 8.2.0-dev code) is also held to its OpenAPI document; 7.0
 * and 8.0 are held to the recorded exchanges by the parity suite instead (they outrank the spec). Test-only.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { createOpenEmrEmulator, type OpenEmrEmulatorOptions, type OpenEmrEngine } from '@cdss/sandbox';
import { OpenApiValidator, type Exchange, type Violation } from './openapi-validator.js';
import { explain, type SpecException } from './spec-exceptions.js';
import { freePort } from '@cdss/core/testing';

const SPECS = {
  '8': fileURLToPath(new URL('../__fixtures__/openemr-api-8.yaml', import.meta.url)),
  '7.0': fileURLToPath(new URL('../__fixtures__/openemr-api-7.0.2.yaml', import.meta.url)),
} as const;

/** A profile the harness runs. */
export type HarnessVersion = '7.0' | '8.0' | '8.2';

const validators = new Map<string, OpenApiValidator>();

/**
 * The compiled spec of a version (cached: compiling takes a moment).
 * @param version - `'7.0'` or `'8'`
 */
export function specFor(version: '7.0' | '8'): OpenApiValidator {
  let v = validators.get(version);
  if (!v) {
    v = new OpenApiValidator(SPECS[version]);
    validators.set(version, v);
  }
  return v;
}

/** A running emulator with its captured traffic. */
export interface Harness {
  baseUrl: string;
  engine: OpenEmrEngine;
  exchanges: Exchange[];
  /** Violations no documented exception explains. */
  unexplained(): { exchange: Exchange; violation: Violation }[];
  /** Which documented exceptions were used, and how often. */
  exceptionsUsed(): Map<SpecException, number>;
  /** Runs `fn` with request validation off: for deliberately bad requests (responses are still checked). */
  badRequests<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Starts the emulator on 127.0.0.1 (port 0) and captures every exchange.
 * @param options - emulator options (`version` selects the spec too)
 */
export async function startHarness(options: OpenEmrEmulatorOptions & { version: HarnessVersion }): Promise<Harness> {
  const router = createOpenEmrEmulator(options);
  const exchanges: Exchange[] = [];
  const badRequest = new WeakSet<Exchange>();
  let bad = 0;
  const app = express();
  app.use(express.raw({ type: () => true, limit: '50mb' }));
  app.use((req, res, next) => {
    const exchange: Exchange = {
      method: req.method,
      url: req.originalUrl,
      requestHeaders: { ...req.headers } as Record<string, string | undefined>,
      requestBody:
        Buffer.isBuffer(req.body) &&
        req.body.length > 0 &&
        !(req.headers['content-type'] ?? '').startsWith('multipart/')
          ? req.body.toString('utf8')
          : undefined,
      status: 0,
      responseHeaders: {},
      responseBody: undefined,
    };
    if (bad > 0) badRequest.add(exchange);
    const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
    (res as unknown as { end: (...args: unknown[]) => typeof res }).end = (...args: unknown[]) => {
      const chunk = args[0];
      exchange.status = res.statusCode;
      exchange.responseBody =
        typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : undefined;
      exchange.responseHeaders = Object.fromEntries(Object.entries(res.getHeaders()).map(([k, v]) => [k, String(v)]));
      exchanges.push(exchange);
      return end(...args);
    };
    next();
  });
  app.use(router);
  const listenPort = await freePort();
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(listenPort, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const classify = (): {
    unexplained: { exchange: Exchange; violation: Violation }[];
    used: Map<SpecException, number>;
  } => {
    const unexplained: { exchange: Exchange; violation: Violation }[] = [];
    const used = new Map<SpecException, number>();
    if (options.version !== '8.2') return { unexplained, used };
    const spec = specFor('8');
    for (const exchange of exchanges) {
      for (const violation of spec.check(exchange)) {
        if (violation.side === 'request' && badRequest.has(exchange)) continue;
        const why = explain(violation, exchange, '8.2');
        if (why) used.set(why, (used.get(why) ?? 0) + 1);
        else unexplained.push({ exchange, violation });
      }
    }
    return { unexplained, used };
  };
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    engine: router.engine,
    exchanges,
    unexplained: () => classify().unexplained,
    exceptionsUsed: () => classify().used,
    async badRequests(fn) {
      bad++;
      try {
        return await fn();
      } finally {
        bad--;
      }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
