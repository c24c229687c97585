/**
 * The embedded FHIR server in its own `worker_threads` Worker. Medplum validates and indexes every resource it is sent
 * (an AuditEvent Bundle per audit group, in the sandbox); in the caller's thread that work competes with the caller's
 * own requests on one event loop. In a Worker it has its own event loop (and a core of its own where there is one),
 * and the caller reaches it by URL, as it reaches any FHIR server.
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EmbeddedFhirServerOptions } from './server.js';

/** Options of {@link startEmbeddedFhirServerThread}: those of the embedded server that can cross a thread boundary. */
export type EmbeddedFhirServerThreadOptions = Omit<EmbeddedFhirServerOptions, 'repository' | 'backendServices'> & {
  /** As `backendServices` of the embedded server, without `now` (a function cannot be sent to the Worker). */
  backendServices?: Omit<NonNullable<EmbeddedFhirServerOptions['backendServices']>, 'now'>;
  /** Called when the Worker fails after it started (an uncaught error, or it exited); its server is then gone. */
  onError?: (error: Error) => void;
  /**
   * The Worker thread's nice value (-20 … 19; higher runs later when the cores are busy), set on Linux only, where it
   * is a thread's own (elsewhere it would be the whole process's). E.g. 10 for a server whose work can wait (the
   * sandbox's copy of the audit trail), so that the caller's own requests go first. Default: the caller's.
   */
  nice?: number;
};

/** The embedded FHIR server running in a Worker. */
export interface EmbeddedFhirServerThread {
  /**
   * Listens (in the Worker).
   * @param port - default 0 (a free port)
   * @returns the FHIR base URL and a `close` function that stops the listener
   * @throws the listen error (its `code`, e.g. `EADDRINUSE`, kept), when the port cannot be had
   */
  listen(port?: number, host?: string): Promise<{ url: string; close(): Promise<void> }>;
  /** Closes the listener, if any, and ends the Worker. */
  close(): Promise<void>;
  /** The Worker (its `threadId`, `performance`, `resourceLimits`; ending it otherwise counts as a failure). */
  readonly worker: Worker;
}

type FromWorker =
  | { type: 'ready' }
  | { type: 'start-error'; message: string }
  | { type: 'listening'; id: number; url: string }
  | { type: 'listen-error'; id: number; message: string; code?: string }
  | { type: 'unlistened'; id: number };

/**
 * The Worker's code, evaluated as CommonJS (`eval: true`) so that it runs unchanged from the TypeScript sources, the
 * ESM build and the CJS build; it imports the module that defines `createEmbeddedFhirServer` from the URL the parent
 * gives it.
 */
const WORKER_SOURCE = `
'use strict';
(async () => {
  // An eval Worker has the globals __dirname ('.') and __filename; modules that look for them to find their files
  // (Medplum's definitions do) would look in the working directory.
  delete globalThis.__dirname;
  delete globalThis.__filename;
  const { parentPort, workerData } = await import('node:worker_threads');
  let fhir;
  try {
    // Linux keeps a nice value per thread: setpriority() on who = 0 (the calling thread) sets this thread's alone.
    if (workerData.nice !== undefined) (await import('node:os')).setPriority(workerData.nice);
    if (workerData.tsx) (await import(workerData.tsx)).register();
    const mod = await import(workerData.entry);
    const create = mod.createEmbeddedFhirServer ?? (mod.default && mod.default.createEmbeddedFhirServer);
    fhir = create(workerData.options);
  } catch (e) {
    parentPort.postMessage({ type: 'start-error', message: String((e && e.message) || e) });
    return;
  }
  const listening = new Map();
  parentPort.on('message', async (msg) => {
    if (msg.type === 'listen') {
      try {
        const server = await fhir.listen(msg.port, msg.host);
        listening.set(msg.id, server);
        parentPort.postMessage({ type: 'listening', id: msg.id, url: server.url });
      } catch (e) {
        parentPort.postMessage({ type: 'listen-error', id: msg.id, message: String((e && e.message) || e), code: e && e.code });
      }
    } else if (msg.type === 'unlisten') {
      const server = listening.get(msg.id);
      listening.delete(msg.id);
      try { if (server) await server.close(); } finally { parentPort.postMessage({ type: 'unlistened', id: msg.id }); }
    }
  });
  parentPort.postMessage({ type: 'ready' });
})();
`;

/** This module's own URL, in the ESM and CJS builds as in the sources. */
function here(): string {
  return typeof __filename === 'string' ? pathToFileURL(__filename).href : import.meta.url;
}

/**
 * Where the Worker finds `createEmbeddedFhirServer`: from a build, the bundle that holds this module exports it; from
 * the TypeScript sources (tests, benches) the Worker loads `server.ts` through tsx's loader, which it registers itself
 * (a loader given with `--import` does not reach an `eval` Worker), under the `@cdss/source` condition. The Worker
 * inherits the process's options unless that condition must be added: then it gets that one alone, since a Worker
 * given V8 or process-wide options (`--max-old-space-size`) explicitly fails to start.
 */
function workerEntry(): { entry: string; tsx?: string; execArgv?: string[] } {
  const self = here();
  if (!/\.[cm]?ts$/.test(new URL(self).pathname)) return { entry: self };
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api')).href;
  const entry = new URL('./server.ts', self).href;
  if (process.execArgv.some((a) => a.includes('@cdss/source'))) return { entry, tsx };
  return { entry, tsx, execArgv: ['--conditions=@cdss/source'] };
}

/**
 * Starts the embedded FHIR server in a new Worker: the R4 definitions are loaded there (about a second) before the
 * promise resolves; then {@link EmbeddedFhirServerThread.listen} starts its HTTP listener. The Worker's repository is
 * in memory, as the in-thread server's is: it lives as long as the Worker.
 * @param options - the embedded server's options (no repository, no `now`), and a handler for later failures
 * @throws the error that stopped the Worker from starting (bad options, a module that cannot load)
 */
export async function startEmbeddedFhirServerThread(
  options: EmbeddedFhirServerThreadOptions = {},
): Promise<EmbeddedFhirServerThread> {
  const { onError, nice, ...serverOptions } = options;
  const { entry, tsx, execArgv } = workerEntry();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { entry, tsx, options: serverOptions, nice: process.platform === 'linux' ? nice : undefined },
    ...(execArgv ? { execArgv } : {}),
  });
  const waiting = new Map<number, (msg: FromWorker) => void>();
  let failed: Error | undefined;
  let closing = false;
  const fail = (error: Error): void => {
    if (failed) return;
    failed = error;
    for (const answer of waiting.values())
      answer({ type: 'listen-error', id: -1, message: `embedded FHIR server thread failed: ${error.message}` });
    waiting.clear();
    if (!closing) onError?.(error);
  };
  await new Promise<void>((resolve, reject) => {
    const onStart = (msg: FromWorker): void => {
      if (msg.type === 'ready') {
        cleanup();
        resolve();
      } else if (msg.type === 'start-error') stop(new Error(`embedded FHIR server thread: ${msg.message}`));
    };
    const stop = (error: Error): void => {
      cleanup();
      void worker.terminate();
      reject(error);
    };
    const onStartError = (error: Error): void => stop(error);
    const onStartExit = (code: number): void =>
      stop(new Error(`embedded FHIR server thread exited with code ${code} before it started`));
    const cleanup = (): void => {
      worker.off('message', onStart);
      worker.off('error', onStartError);
      worker.off('exit', onStartExit);
    };
    worker.on('message', onStart);
    worker.on('error', onStartError);
    worker.on('exit', onStartExit);
  });
  worker.on('message', (msg: FromWorker) => {
    if ('id' in msg) {
      const answer = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (waiting.size === 0) worker.unref();
      answer?.(msg);
    }
  });
  // The caller's own servers keep the process alive; a Worker left behind by a caller that failed to start must not.
  // While the caller waits for an answer, the Worker keeps the process alive.
  worker.unref();
  worker.on('error', (error) => fail(error));
  worker.on('exit', (code) => fail(new Error(`embedded FHIR server thread exited with code ${code}`)));

  let nextId = 1;
  const ask = (msg: { type: 'listen'; port: number; host: string } | { type: 'unlisten'; id: number }) => {
    const id = msg.type === 'unlisten' ? msg.id : nextId++;
    return new Promise<FromWorker>((resolve) => {
      if (failed) {
        resolve({ type: 'listen-error', id, message: `embedded FHIR server thread failed: ${failed.message}` });
        return;
      }
      waiting.set(id, resolve);
      worker.ref();
      worker.postMessage({ ...msg, id });
    });
  };
  const listeners = new Set<number>();
  const unlisten = async (id: number): Promise<void> => {
    if (!listeners.delete(id) || failed) return;
    await ask({ type: 'unlisten', id });
  };
  return {
    worker,
    async listen(port = 0, host = '127.0.0.1') {
      const answer = await ask({ type: 'listen', port, host });
      if (answer.type !== 'listening') {
        const message = answer.type === 'listen-error' ? answer.message : 'unexpected answer';
        const error = new Error(message) as NodeJS.ErrnoException;
        if (answer.type === 'listen-error' && answer.code) error.code = answer.code;
        throw error;
      }
      listeners.add(answer.id);
      return { url: answer.url, close: () => unlisten(answer.id) };
    },
    async close() {
      if (closing) return;
      for (const id of [...listeners]) await unlisten(id);
      closing = true;
      await worker.terminate();
    },
  };
}
