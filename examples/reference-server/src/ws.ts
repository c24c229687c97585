/**
 * The WebSocket endpoint `/ws`.
 *
 * Authentication uses the same bearer tokens as the REST API, sent in the first message
 * (`{"type":"auth","token":"..."}`) — never in the URL, which proxies log. Clients then subscribe to a patient or an
 * analysis. `patient.alert` events go to every connected user allowed to read patients. Dead connections are found
 * by ping/pong heartbeats.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import type { Logger } from 'pino';
import { isAllowed } from './auth/rbac.js';
import type { Principal, TokenVerifier } from './auth/tokens.js';
import type { EventBus, ServerEvent } from './events.js';
import type { ServerMetrics } from './metrics.js';

const clientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1) }),
  z.object({ type: z.literal('subscribe'), topic: z.string().regex(/^(patient|analysis):[\w.-]+$/) }),
  z.object({ type: z.literal('unsubscribe'), topic: z.string() }),
  z.object({ type: z.literal('ping') }),
]);

/** Close codes. @see https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1 */
export const WS_CLOSE = { goingAway: 1001, policyViolation: 1008, authTimeout: 4401 } as const;

interface Connection {
  socket: WebSocket;
  principal?: Principal;
  topics: Set<string>;
  alive: boolean;
}

/** Options of {@link attachWebSocket}. */
export interface WebSocketOptions {
  server: Server;
  verifier: TokenVerifier;
  bus: EventBus;
  logger: Logger;
  metrics: ServerMetrics;
  /** How long a client has to authenticate. */
  authTimeoutMs?: number;
  heartbeatMs?: number;
  /** Largest accepted client message. */
  maxPayload?: number;
}

/** The running WebSocket hub. */
export interface WebSocketHub {
  /** Closes every connection with 1001 (going away). */
  close(): Promise<void>;
  connections(): number;
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

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== '/ws') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  server.on('upgrade', onUpgrade);

  wss.on('connection', (socket: WebSocket) => {
    const connection: Connection = { socket, topics: new Set(), alive: true };
    connections.add(connection);
    metrics.wsConnections.inc();
    const authTimer = setTimeout(() => {
      if (!connection.principal) socket.close(WS_CLOSE.authTimeout, 'authentication timeout');
    }, options.authTimeoutMs ?? 10_000);
    socket.on('pong', () => {
      connection.alive = true;
    });
    socket.on('close', () => {
      clearTimeout(authTimer);
      connections.delete(connection);
      metrics.wsConnections.dec();
    });
    // Messages are handled one after another, so a client may send `subscribe` right behind `auth`.
    let queue = Promise.resolve();
    socket.on('message', (raw) => {
      queue = queue.then(() => handleMessage(connection, raw.toString(), authTimer));
    });
  });

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
      send(socket, { type: 'subscribed', topic: message.topic });
    }
  }

  const unsubscribe = bus.subscribe((event) => {
    for (const connection of connections) {
      if (mayReceive(connection, event)) send(connection.socket, { type: 'event', event });
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
