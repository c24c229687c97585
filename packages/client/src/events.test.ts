import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { connectEvents, type EventStream, type WebSocketLike } from './events.js';
import type { ServerEvent } from './schemas.js';
import { freePort } from '@cdss/core/testing';

/** A stand-in for the server's /ws: auth, ready, subscribe/subscribed, events (the protocol of examples/reference-server/src/ws.ts). */
async function fakeServer(answer: (message: Record<string, unknown>, socket: ServerSocket) => void) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: await freePort(), path: '/ws' });
  await new Promise((resolve) => wss.once('listening', resolve));
  const sockets: ServerSocket[] = [];
  const received: Array<Record<string, unknown>> = [];
  wss.on('connection', (socket) => {
    sockets.push(socket);
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as Record<string, unknown>;
      received.push(message);
      if (message['type'] === 'auth') socket.send(JSON.stringify({ type: 'ready' }));
      else answer(message, socket);
    });
  });
  const { port } = wss.address() as { port: number };
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    sockets,
    received,
    close: () => new Promise((resolve) => wss.close(resolve)),
  };
}

const event = (seq: number, epoch = 'e1'): string =>
  JSON.stringify({
    type: 'event',
    event: {
      type: 'analysis.progress',
      patientId: 'p1',
      analysisId: 'a1',
      data: { seq, epoch },
      time: '2026-12-06T10:00:00Z',
      seqs: { 'analysis:a1': seq },
    },
  });

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

let stream: EventStream | undefined;
let closeServer: (() => Promise<unknown>) | undefined;
afterEach(async () => {
  stream?.close();
  await closeServer?.();
});

describe('connectEvents', () => {
  it('authenticates first, subscribes after ready, reconnects and asks for what it missed, once each', async () => {
    let epoch = 'e1';
    const srv = await fakeServer((message, socket) => {
      if (message['type'] !== 'subscribe') return;
      socket.send(JSON.stringify({ type: 'subscribed', topic: message['topic'], seq: 0, epoch, complete: true }));
      // what the server holds above `since`, then a duplicate of the last one (the client must drop it)
      const since = Number(message['since'] ?? 0);
      for (let seq = since + 1; seq <= since + 2; seq++) socket.send(event(seq, epoch));
      socket.send(event(since + 2, epoch));
    });
    closeServer = srv.close;
    const events: ServerEvent[] = [];
    const statuses: string[] = [];
    const resyncs: string[] = [];
    stream = connectEvents({
      baseUrl: srv.baseUrl,
      getToken: () => 'tok-1',
      WebSocket: WebSocket as unknown as new (url: string) => WebSocketLike,
      onEvent: (e) => events.push(e),
      onStatus: (s) => statuses.push(s),
      onResync: (topic) => resyncs.push(topic),
      reconnectDelayMs: 10,
    });
    stream.subscribe('analysis:a1', { fromStart: true });
    await until(() => events.length === 2);
    expect(srv.received[0]).toEqual({ type: 'auth', token: 'tok-1' });
    expect(srv.received[1]).toEqual({ type: 'subscribe', topic: 'analysis:a1', since: 0 });

    // The connection drops: the client reconnects, authenticates again and resumes after event 2 of epoch e1.
    srv.sockets[0]!.terminate();
    await until(() => events.length === 4);
    expect(srv.received.filter((m) => m['type'] === 'auth')).toHaveLength(2);
    expect(srv.received.at(-1)).toEqual({ type: 'subscribe', topic: 'analysis:a1', since: 2, epoch: 'e1' });
    expect(events.map((e) => e.seqs?.['analysis:a1'])).toEqual([1, 2, 3, 4]);
    expect(resyncs).toEqual([]);
    expect(statuses.slice(0, 4)).toEqual(['connecting', 'open', 'closed', 'connecting']);

    // The server restarted (new epoch): its log cannot replay, so the application is told to read the state again.
    epoch = 'e2';
    srv.sockets[1]!.terminate();
    await until(() => resyncs.length === 1);
    expect(resyncs).toEqual(['analysis:a1']);
  });

  it('stops reconnecting once closed', async () => {
    const srv = await fakeServer(() => undefined);
    closeServer = srv.close;
    const statuses: string[] = [];
    stream = connectEvents({
      baseUrl: srv.baseUrl,
      getToken: () => undefined,
      WebSocket: WebSocket as unknown as new (url: string) => WebSocketLike,
      onEvent: () => undefined,
      onStatus: (s) => statuses.push(s),
      reconnectDelayMs: 10,
    });
    await until(() => statuses.includes('open'));
    expect(srv.received[0]).toEqual({ type: 'auth', token: '' });
    stream.close();
    await until(() => statuses.includes('closed'));
    await new Promise((r) => setTimeout(r, 100));
    expect(statuses.filter((s) => s === 'connecting')).toHaveLength(1);
    expect(srv.sockets).toHaveLength(1);
  });
});
