/**
 * An HTTP agent that keeps connections to Orthanc alive.
 *
 * Orthanc (civetweb) answers `Keep-Alive: timeout=1`. Node's agent subtracts a 1 s safety margin from that hint
 * and, left with 0, closes every socket after one request (Node ≥ 20: `Agent#keepSocketAlive`), so each of the
 * hundreds of requests of an upload opened a new TCP connection. This agent keeps idle sockets for a
 * configurable time shorter than the server's (default 500 ms), which avoids both the reconnects and the
 * server closing a socket we are about to reuse.
 * @packageDocumentation
 */
import { Agent, type AgentOptions } from 'node:http';
import type { Socket } from 'node:net';

/** Options of {@link createKeepAliveAgent}. */
export interface KeepAliveAgentOptions extends AgentOptions {
  /** How long an idle socket is kept for reuse, ms; keep it below the server's keep-alive timeout. Default 500. */
  idleSocketMs?: number;
}

/** `http.Agent#addRequest` exists at run time but is not in Node's typings. */
interface AgentInternals {
  addRequest(request: unknown, options: unknown): void;
}

class ShortKeepAliveAgent extends Agent {
  private readonly probeDelayMs: number;
  private readonly freeSince = new WeakMap<Socket, number>();
  constructor(
    private readonly idleSocketMs: number,
    options: AgentOptions,
  ) {
    // FIFO: the oldest free socket is taken (or purged as stale) first.
    super({ ...options, keepAlive: true, scheduling: 'fifo' });
    this.probeDelayMs = options.keepAliveMsecs ?? 1000;
  }

  override keepSocketAlive(socket: Socket): boolean {
    socket.setKeepAlive(true, this.probeDelayMs);
    socket.unref();
    // The agent destroys a free socket when it times out.
    socket.setTimeout(this.idleSocketMs);
    this.freeSince.set(socket, Date.now());
    return true;
  }

  /**
   * Before a request takes a free socket, destroys the ones idle for longer than `idleSocketMs`: on a busy
   * machine the idle timer can fire late, and a socket the server has already closed would fail the request.
   */
  addRequest(request: unknown, options: unknown): void {
    const now = Date.now();
    for (const list of Object.values(this.freeSockets)) {
      for (const socket of list ?? []) {
        if (now - (this.freeSince.get(socket as Socket) ?? now) >= this.idleSocketMs) socket.destroy();
      }
    }
    (Agent.prototype as unknown as AgentInternals).addRequest.call(this, request, options);
  }

  override reuseSocket(socket: Socket, request: Parameters<Agent['reuseSocket']>[1]): void {
    socket.setTimeout(0);
    super.reuseSocket(socket, request);
  }
}

/**
 * An `http.Agent` for Orthanc that reuses connections despite Orthanc's 1 s keep-alive hint.
 * @param options - idle time and any `http.Agent` options (e.g. `maxSockets`)
 * @returns the agent
 */
export function createKeepAliveAgent(options: KeepAliveAgentOptions = {}): Agent {
  const { idleSocketMs = 500, ...rest } = options;
  return new ShortKeepAliveAgent(idleSocketMs, rest);
}
