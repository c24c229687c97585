/**
 * What a hostile or broken WebSocket client can do to `/ws`: oversize and malformed frames, abrupt closes and idle
 * unauthenticated connections. Each test ends by checking that the server still answers HTTP and WebSocket clients.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startHarness, type Harness } from './test-support.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const wsUrl = (harness: Harness): string => `${harness.baseUrl.replace('http', 'ws')}/ws`;

/** Opens a client, optionally as if forwarded by a trusted proxy for `forwardedFor`. */
async function open(harness: Harness, forwardedFor?: string): Promise<WebSocket> {
  const ws = new WebSocket(wsUrl(harness), forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {});
  await once(ws, 'open');
  return ws;
}

/** The HTTP status of a refused upgrade. */
async function refusedStatus(harness: Harness, forwardedFor?: string): Promise<number> {
  const ws = new WebSocket(wsUrl(harness), forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {});
  ws.on('error', () => undefined);
  const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
  return response.statusCode;
}

/** Proves the server survived: `/healthz` answers and a new client can authenticate. */
async function expectServing(harness: Harness): Promise<void> {
  expect((await fetch(`${harness.baseUrl}/healthz`)).status).toBe(200);
  const ws = await open(harness);
  ws.send(JSON.stringify({ type: 'auth', token: await harness.token('demo-nurse') }));
  const [data] = (await once(ws, 'message')) as [Buffer];
  expect(JSON.parse(data.toString())).toMatchObject({ type: 'ready' });
  ws.close();
}

/** A TCP socket that has completed the WebSocket handshake by hand, for frames no client library would send. */
async function rawSocket(harness: Harness): Promise<{ socket: Socket; received: () => Buffer }> {
  const { port } = new URL(harness.baseUrl);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.write(
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await expect.poll(() => Buffer.concat(chunks).includes('\r\n\r\n')).toBe(true);
  expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  const headerEnd = Buffer.concat(chunks).indexOf('\r\n\r\n') + 4;
  return { socket, received: () => Buffer.concat(chunks).subarray(headerEnd) };
}

/** A client frame (RFC 6455 §5.2); masked unless told otherwise. */
function frame(
  opcode: number,
  payload: Buffer,
  options: { mask?: boolean; fin?: boolean; rsv1?: boolean; declaredLength?: number } = {},
): Buffer {
  const { mask = true, fin = true, rsv1 = false } = options;
  const length = options.declaredLength ?? payload.length;
  const head = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else head.push(maskBit | 126, length >> 8, length & 0xff);
  const key = randomBytes(4);
  const body = mask ? Buffer.from(payload.map((byte, i) => byte ^ key[i % 4]!)) : payload;
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

/** The status code of the first close frame the server sent. */
function closeCode(data: Buffer): number | undefined {
  let offset = 0;
  while (offset + 2 <= data.length) {
    const opcode = data[offset]! & 0x0f;
    const length = data[offset + 1]! & 0x7f;
    const start = offset + 2 + (length === 126 ? 2 : 0);
    if (opcode === 0x8) return data.readUInt16BE(start);
    offset = start + (length === 126 ? data.readUInt16BE(offset + 2) : length);
  }
  return undefined;
}

describe('frames the server must survive', () => {
  it('closes an unauthenticated client that sends a frame over the size limit with 1009, and keeps serving', async () => {
    h = await startHarness(() => []);
    const ws = await open(h);
    ws.on('error', () => undefined);
    ws.send('x'.repeat(16 * 1024 + 1));
    const [code] = (await once(ws, 'close')) as [number];
    expect(code).toBe(1009);
    await expectServing(h);
  });

  it.each([
    ['a reserved bit without an extension', frame(0x1, Buffer.from('{}'), { rsv1: true }), 1002],
    ['an unmasked client frame', frame(0x1, Buffer.from('{}'), { mask: false }), 1002],
    ['an unknown opcode', frame(0x3, Buffer.from('{}')), 1002],
    ['invalid UTF-8 in a text frame', frame(0x1, Buffer.from([0xc3, 0x28])), 1007],
    ['a fragmented control frame', frame(0x9, Buffer.from('ping'), { fin: false }), 1002],
    ['a control frame over 125 bytes', frame(0x9, Buffer.alloc(126)), 1002],
    ['a continuation frame with nothing to continue', frame(0x0, Buffer.from('{}')), 1002],
  ])('answers %s with a close frame and keeps serving', async (_what, bytes, expected) => {
    h = await startHarness(() => []);
    const { socket, received } = await rawSocket(h);
    socket.write(bytes);
    await once(socket, 'close');
    expect(closeCode(received())).toBe(expected);
    await expectServing(h);
  });

  it('survives abrupt closes: mid-handshake, mid-frame, and a TCP reset after authenticating', async () => {
    h = await startHarness(() => []);
    const { port } = new URL(h.baseUrl);

    const halfHandshake = connect(Number(port), '127.0.0.1');
    halfHandshake.on('error', () => undefined);
    await once(halfHandshake, 'connect');
    halfHandshake.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Up');
    halfHandshake.resetAndDestroy();

    const midFrame = await rawSocket(h);
    midFrame.socket.write(frame(0x1, Buffer.alloc(10), { declaredLength: 1000 }).subarray(0, 12));
    midFrame.socket.resetAndDestroy();

    const authenticated = await open(h);
    authenticated.on('error', () => undefined);
    authenticated.send(JSON.stringify({ type: 'auth', token: await h.token('demo-nurse') }));
    await once(authenticated, 'message');
    const underlying = (authenticated as unknown as { _socket: Socket })._socket;
    underlying.resetAndDestroy();
    await once(authenticated, 'close');

    await expect.poll(() => h!.server.hub.connections()).toBe(0);
    await expectServing(h);
  });

  it('answers a message that is not JSON, or not a known message, with an error and keeps the connection', async () => {
    h = await startHarness(() => []);
    const ws = await open(h);
    const messages: unknown[] = [];
    ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString())));
    ws.send('{not json');
    ws.send(JSON.stringify({ type: 'subscribe', topic: '../../etc' }));
    ws.send(Buffer.from([0, 1, 2, 3]));
    await expect.poll(() => messages.length).toBe(3);
    expect(messages).toEqual(Array(3).fill({ type: 'error', message: 'invalid message' }));
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    await expectServing(h);
  });
});

describe('unauthenticated connection caps', () => {
  it('refuses a client address over its cap with 429, counting each forwarded address apart', async () => {
    h = await startHarness(() => [], { CDSS_WS_MAX_UNAUTHENTICATED_PER_IP: '2' });
    const first = [await open(h, '203.0.113.7'), await open(h, '203.0.113.7')];
    expect(await refusedStatus(h, '203.0.113.7')).toBe(429);
    // Another address behind the same (trusted, loopback) proxy is unaffected.
    const other = await open(h, '198.51.100.9');
    // Authenticating gives the slot back.
    first[0]!.send(JSON.stringify({ type: 'auth', token: await h.token('demo-nurse') }));
    await once(first[0]!, 'message');
    const again = await open(h, '203.0.113.7');
    expect(await refusedStatus(h, '203.0.113.7')).toBe(429);
    // Closing does too.
    first[1]!.close();
    await expect.poll(() => h!.server.hub.connections()).toBe(3);
    const afterClose = await open(h, '203.0.113.7');
    for (const ws of [first[0]!, other, again, afterClose]) ws.close();
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/cdss_websocket_refused_total\{reason="per_address"\} 2/);
  });

  it('refuses every client with 503 once the total cap is reached, until a slot frees', async () => {
    h = await startHarness(() => [], { CDSS_WS_MAX_UNAUTHENTICATED: '3' });
    const idle = [await open(h, '192.0.2.1'), await open(h, '192.0.2.2'), await open(h, '192.0.2.3')];
    expect(await refusedStatus(h, '192.0.2.4')).toBe(503);
    expect(await refusedStatus(h)).toBe(503);
    idle[0]!.close();
    await once(idle[0]!, 'close');
    await expect.poll(() => h!.server.hub.connections()).toBe(2);
    await expectServing(h);
    for (const ws of idle) ws.close();
  });
});
