/**
 * The WebSocket endpoint `/ws`.
 *
 * Authentication uses the same bearer tokens as the REST API, sent in the first message
 * (`{"type":"auth","token":"..."}`) — never in the URL, which proxies log. Clients then subscribe to a patient or an
 * analysis. `patient.alert` events go to every connected user allowed to read patients. Dead connections are found
 * by ping/pong heartbeats.
 *
 * Nothing a client sends can stop the process: every socket and WebSocket has an `'error'` listener (an oversize or
 * malformed frame closes that connection with 1009/1002 and nothing else), and connections that have not yet
 * authenticated are capped per client address and in total, so idle sockets cannot exhaust the server.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import type { Logger } from 'pino';
import { isAllowed } from './auth/rbac.js';
import type { Principal, TokenVerifier } from './auth/tokens.js';
import { topicsOf, type EventBus, type EventLog, type ServerEvent } from './events.js';
import type { ServerMetrics } from './metrics.js';

const clientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1) }),
  z.object({
    type: z.literal('subscribe'),
    topic: z.string().regex(/^(patient|analysis):[\w.-]+$/),
    /** Replays the topic's events numbered above this (from the event log), before live ones. */
    since: z.number().int().min(0).optional(),
    /** The log epoch `since` was counted in; a different one means the numbers are void. */
    epoch: z.string().max(100).optional(),
  }),
  z.object({ type: z.literal('unsubscribe'), topic: z.string() }),
  z.object({ type: z.literal('ping') }),
]);

/** Close codes. @see https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1 */
export const WS_CLOSE = { goingAway: 1001, policyViolation: 1008, internalError: 1011, authTimeout: 4401 } as const;

interface Connection {
  socket: WebSocket;
  principal?: Principal;
  topics: Set<string>;
  alive: boolean;
  /** Gives the connection's unauthenticated slot back (once authenticated or closed). */
  settle(): void;
  /** Live events held back while a topic's replay is being sent (so that none arrives before older ones). */
  replaying: Map<string, ServerEvent[]>;
  /** Ids of the events sent on this connection, newest last (an event in two subscribed topics goes out once). */
  sent: Set<string>;
}

/** How many event ids a connection remembers for de-duplication. */
const SENT_MEMORY = 2_048;

/** Options of {@link attachWebSocket}. */
export interface WebSocketOptions {
  server: Server;
  verifier: TokenVerifier;
  bus: EventBus;
  /** The replay log that numbered the bus's events; without it `since` is ignored. */
  log?: EventLog;
  logger: Logger;
  metrics: ServerMetrics;
  /** How long a client has to authenticate. */
  authTimeoutMs?: number;
  heartbeatMs?: number;
  /** Largest accepted client message. */
  maxPayload?: number;
  /** Connections that have not authenticated yet, allowed at once from one client address. */
  maxUnauthenticatedPerAddress: number;
  /** Connections that have not authenticated yet, allowed at once in total. */
  maxUnauthenticated: number;
  /**
   * The client's address for the per-address cap (behind a proxy, the one the trusted proxy forwarded); the TCP
   * peer's address by default.
   */
  clientAddress?(req: IncomingMessage): string;
}

/** The running WebSocket hub. */
export interface WebSocketHub {
  /** Closes every connection with 1001 (going away). */
  close(): Promise<void>;
  connections(): number;
}

/** Answers an upgrade request with a plain HTTP error and closes the socket. */
function refuseUpgrade(socket: Duplex, status: 429 | 503, reason: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nRetry-After: 10\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${reason.length}\r\n\r\n${reason}`,
  );
}

function send(socket: WebSocket, message: unknown): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
}

function mayReceive(connection: Connection, event: ServerEvent): boolean {
  const principal = connection.principal;
  if (!principal) return false;
  if (event.type === 'patient.alert') return isAllowed(principal.roles, 'patient:read');
  if (event.type === 'patient.updated')
    return connection.topics.has(`patient:${event.patientId}`) && isAllowed(principal.roles, 'patient:read');
  // Analysis events reach subscribers of the analysis and of its patient.
  const subscribed =
    connection.topics.has(`patient:${event.patientId}`) ||
    (event.analysisId !== undefined && connection.topics.has(`analysis:${event.analysisId}`));
  return subscribed && isAllowed(principal.roles, 'analysis:read');
}

/**
 * Attaches `/ws` to an HTTP server.
 * @param options - server, token verifier, event bus, logger and metrics
 */
export function attachWebSocket(options: WebSocketOptions): WebSocketHub {
  const { server, verifier, bus, logger, metrics } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload ?? 16 * 1024 });
  const connections = new Set<Connection>();
  const { maxUnauthenticatedPerAddress, maxUnauthenticated } = options;
  const clientAddress = options.clientAddress ?? ((req: IncomingMessage) => req.socket.remoteAddress ?? 'unknown');
  /** Unauthenticated connections (and upgrades in progress) by client address. */
  const pending = new Map<string, number>();
  let pendingTotal = 0;
  const release = (address: string): void => {
    const left = (pending.get(address) ?? 1) - 1;
    if (left > 0) pending.set(address, left);
    else pending.delete(address);
    pendingTotal -= 1;
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node hands the raw socket over without an error listener: a reset during the handshake must not throw.
    socket.on('error', (error: Error) => logger.debug({ err: { message: error.message } }, 'upgrade socket error'));
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== '/ws') {
      socket.destroy();
      return;
    }
    const address = clientAddress(req);
    if (pendingTotal >= maxUnauthenticated) {
      metrics.wsRefused.inc({ reason: 'total' });
      refuseUpgrade(socket, 503, 'Too many unauthenticated connections');
      return;
    }
    if ((pending.get(address) ?? 0) >= maxUnauthenticatedPerAddress) {
      metrics.wsRefused.inc({ reason: 'per_address' });
      refuseUpgrade(socket, 429, 'Too many unauthenticated connections from this address');
      return;
    }
    pending.set(address, (pending.get(address) ?? 0) + 1);
    pendingTotal += 1;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      release(address);
    };
    // A handshake that never completes (socket closed, bad headers) gives its slot back too.
    socket.once('close', settle);
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, settle));
  };
  server.on('upgrade', onUpgrade);

  function onConnection(socket: WebSocket, settle: () => void): void {
    const connection: Connection = {
      socket,
      topics: new Set(),
      alive: true,
      settle,
      replaying: new Map(),
      sent: new Set(),
    };
    connections.add(connection);
    metrics.wsConnections.inc();
    const authTimer = setTimeout(() => {
      if (!connection.principal) socket.close(WS_CLOSE.authTimeout, 'authentication timeout');
    }, options.authTimeoutMs ?? 10_000);
    // Oversize frames (1009), malformed frames (1002) and invalid UTF-8 (1007) arrive here; ws then closes the
    // connection. Without this listener the error would be an uncaught exception and stop the process.
    socket.on('error', (error: Error) => {
      logger.debug({ err: { message: error.message } }, 'websocket client error');
    });
    socket.on('pong', () => {
      connection.alive = true;
    });
    socket.on('close', () => {
      clearTimeout(authTimer);
      settle();
      connections.delete(connection);
      metrics.wsConnections.dec();
    });
    // Messages are handled one after another, so a client may send `subscribe` right behind `auth`.
    let queue = Promise.resolve();
    socket.on('message', (raw) => {
      queue = queue
        .then(() => handleMessage(connection, raw.toString(), authTimer))
        .catch((error: unknown) => {
          logger.warn({ err: error }, 'websocket message handling failed');
          socket.close(WS_CLOSE.internalError, 'internal error');
        });
    });
  }

  async function handleMessage(connection: Connection, raw: string, authTimer: NodeJS.Timeout): Promise<void> {
    const socket = connection.socket;
    let message: z.infer<typeof clientMessageSchema>;
    try {
      message = clientMessageSchema.parse(JSON.parse(raw));
    } catch {
      send(socket, { type: 'error', message: 'invalid message' });
      return;
    }
    if (message.type === 'auth') {
      try {
        const principal = await verifier.verify(message.token);
        connection.principal = principal;
        clearTimeout(authTimer);
        connection.settle();
        send(socket, { type: 'ready', user: { id: principal.id, name: principal.name, roles: principal.roles } });
      } catch {
        socket.close(WS_CLOSE.policyViolation, 'invalid token');
      }
      return;
    }
    if (!connection.principal) {
      socket.close(WS_CLOSE.policyViolation, 'authenticate first');
      return;
    }
    if (message.type === 'ping') send(socket, { type: 'pong' });
    else if (message.type === 'unsubscribe') connection.topics.delete(message.topic);
    else {
      const needed = message.topic.startsWith('patient:') ? 'patient:read' : 'analysis:read';
      if (!isAllowed(connection.principal.roles, needed)) {
        send(socket, { type: 'error', message: `not allowed to subscribe to ${message.topic.split(':')[0]}` });
        return;
      }
      connection.topics.add(message.topic);
      if (!options.log) {
        send(socket, { type: 'subscribed', topic: message.topic });
        return;
      }
      // Live events of the topic wait while the replay is read and sent, then follow it (the id check drops those
      // that were in the replay too).
      const held: ServerEvent[] = [];
      connection.replaying.set(message.topic, held);
      try {
        const replay = await options.log.since(message.topic, message.since ?? Number.MAX_SAFE_INTEGER);
        const valid = replay.complete && (message.epoch === undefined || message.epoch === replay.epoch);
        if (message.since !== undefined && valid) for (const event of replay.events) deliver(connection, event);
        connection.replaying.delete(message.topic);
        const since = message.since ?? 0;
        for (const event of held) if ((event.seqs?.[message.topic] ?? Infinity) > since) deliver(connection, event);
        send(socket, {
          type: 'subscribed',
          topic: message.topic,
          seq: replay.latest,
          epoch: replay.epoch,
          ...(message.since !== undefined ? { replayed: valid ? replay.events.length : 0, complete: valid } : {}),
        });
      } catch (error) {
        connection.replaying.delete(message.topic);
        for (const event of held) deliver(connection, event);
        logger.warn({ err: { message: (error as Error).message } }, 'event replay failed');
        send(socket, { type: 'subscribed', topic: message.topic, complete: false });
      }
    }
  }

  /** Sends an event the connection may see, once. */
  function deliver(connection: Connection, event: ServerEvent): void {
    if (!mayReceive(connection, event)) return;
    if (event.id) {
      if (connection.sent.has(event.id)) return;
      connection.sent.add(event.id);
      if (connection.sent.size > SENT_MEMORY) connection.sent.delete(connection.sent.values().next().value as string);
    }
    send(connection.socket, { type: 'event', event });
  }

  const unsubscribe = bus.subscribe((event) => {
    const topics = topicsOf(event);
    for (const connection of connections) {
      const held = topics.map((topic) => connection.replaying.get(topic)).find(Boolean);
      if (held) held.push(event);
      else deliver(connection, event);
    }
  });

  const heartbeat = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }, options.heartbeatMs ?? 30_000);
  heartbeat.unref();

  return {
    connections: () => connections.size,
    async close() {
      clearInterval(heartbeat);
      unsubscribe();
      server.off('upgrade', onUpgrade);
      for (const connection of connections) connection.socket.close(WS_CLOSE.goingAway, 'server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      logger.debug('websocket hub closed');
    },
  };
}
