import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpError, RetryError } from '@cdss/core';
import { CancelAnalysis, JobClient, RequestAnalysis } from './client.js';
import { createMessage, encodeMessage } from './codec.js';
import { MemoryJobStore } from './memory-store.js';
import { MemoryBroker, MemoryTransport } from './memory-transport.js';
import { pollJob } from './polling.js';
import { sampleRequestInput, sampleResult } from './testing.js';
import { JobWorker } from './worker.js';
import {
  MemoryReplayCache,
  SIGNATURE_HEADER,
  WebhookSender,
  WebhookVerificationError,
  signWebhook,
  verifyWebhook,
  type WebhookRejection,
} from './webhooks.js';
import { listenOnFreePort } from '@cdss/core/testing';

const SECRET = 'whsec_test_0123456789abcdef';
const OTHER = 'whsec_other_0123456789abcdef';
const body = encodeMessage(
  createMessage({
    type: 'analysis.progress',
    jobId: '0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70',
    workerId: 'w',
    stage: 'fetch',
    percent: 1,
  }),
);
const T0 = 1_764_136_800; // seconds

async function rejection(p: Promise<unknown>): Promise<WebhookRejection | 'accepted'> {
  try {
    await p;
    return 'accepted';
  } catch (error) {
    if (error instanceof WebhookVerificationError) return error.rejection;
    throw error;
  }
}

describe('webhook signatures', () => {
  const now = () => T0 * 1000;

  it('accepts an authentic, fresh webhook once', async () => {
    const cache = new MemoryReplayCache(now);
    const signature = signWebhook(body, SECRET, T0);
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(await verifyWebhook({ body, signature, secrets: SECRET, now, replayCache: cache })).toBe(T0);
  });

  it('rejects a forged signature (wrong secret)', async () => {
    expect(
      await rejection(verifyWebhook({ body, signature: signWebhook(body, OTHER, T0), secrets: SECRET, now })),
    ).toBe('mismatch');
  });

  it('rejects an altered body', async () => {
    const signature = signWebhook(body, SECRET, T0);
    const altered = Buffer.from(body.toString().replace('"percent":1', '"percent":99'));
    expect(await rejection(verifyWebhook({ body: altered, signature, secrets: SECRET, now }))).toBe('mismatch');
  });

  it('rejects an altered timestamp (the timestamp is signed)', async () => {
    const signature = signWebhook(body, SECRET, T0).replace(`t=${T0}`, `t=${T0 + 1}`);
    expect(await rejection(verifyWebhook({ body, signature, secrets: SECRET, now }))).toBe('mismatch');
  });

  it('rejects a replay inside the window and a stale one outside it', async () => {
    const cache = new MemoryReplayCache(now);
    const signature = signWebhook(body, SECRET, T0);
    expect(await rejection(verifyWebhook({ body, signature, secrets: SECRET, now, replayCache: cache }))).toBe(
      'accepted',
    );
    expect(await rejection(verifyWebhook({ body, signature, secrets: SECRET, now, replayCache: cache }))).toBe(
      'replayed',
    );
    const later = () => (T0 + 301) * 1000;
    expect(await rejection(verifyWebhook({ body, signature, secrets: SECRET, now: later }))).toBe('expired');
    const early = () => (T0 - 301) * 1000;
    expect(await rejection(verifyWebhook({ body, signature, secrets: SECRET, now: early }))).toBe('expired');
  });

  it('rejects missing and malformed headers', async () => {
    expect(await rejection(verifyWebhook({ body, signature: undefined, secrets: SECRET, now }))).toBe('missing');
    expect(await rejection(verifyWebhook({ body, signature: 'sha256=abc', secrets: SECRET, now }))).toBe('malformed');
    expect(await rejection(verifyWebhook({ body, signature: `t=${T0},v1=xyz`, secrets: SECRET, now }))).toBe(
      'malformed',
    );
    expect(
      await rejection(verifyWebhook({ body, signature: `t=${T0},v1=${'0'.repeat(63)}`, secrets: SECRET, now })),
    ).toBe('malformed');
  });

  it('supports secret rotation: two signatures, either secret verifies', async () => {
    const signature = signWebhook(body, [OTHER, SECRET], T0);
    expect(signature.split(',v1=')).toHaveLength(3);
    expect(await rejection(verifyWebhook({ body, signature, secrets: SECRET, now }))).toBe('accepted');
    expect(await rejection(verifyWebhook({ body, signature, secrets: [OTHER], now }))).toBe('accepted');
  });

  it('refuses short secrets', () => {
    expect(() => signWebhook(body, 'short', T0)).toThrow(/16 characters/);
    expect(() => new WebhookSender({ secret: 'short' })).toThrow(/16 characters/);
  });
});

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

describe('webhook delivery over real HTTP (127.0.0.1, port 0)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function listen(
    handler: (req: IncomingMessage, raw: Buffer) => Promise<[number, Record<string, string>?]>,
  ): Promise<string> {
    server = createServer((req, res) => {
      void readBody(req)
        .then((raw) => handler(req, raw))
        .then(([status, headers]) => res.writeHead(status, headers).end())
        .catch(() => res.writeHead(500).end());
    });
    await listenOnFreePort(server!);
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/hook`;
  }

  const noSleep = async () => {};
  const message = createMessage({
    type: 'analysis.progress',
    jobId: '0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70',
    workerId: 'w',
    stage: 'store',
    percent: 90,
  });

  it('retries 503 and 429 with backoff, then delivers a body the receiver verifies', async () => {
    const statuses = [503, 429, 200];
    const verified: boolean[] = [];
    const cache = new MemoryReplayCache();
    const url = await listen(async (req, raw) => {
      verified.push(
        (await rejection(
          verifyWebhook({ body: raw, signature: req.headers[SIGNATURE_HEADER], secrets: SECRET, replayCache: cache }),
        )) === 'accepted',
      );
      const status = statuses.shift()!;
      return status === 429 ? [status, { 'retry-after': '0' }] : [status];
    });
    const sleeps: number[] = [];
    const sender = new WebhookSender({ secret: SECRET, sleep: async (ms) => void sleeps.push(ms), baseDelayMs: 10 });
    expect(await sender.deliver(url, message)).toEqual({ status: 200, attempts: 3 });
    // each attempt was signed afresh; the replay cache would have refused an identical resend within one second
    expect(verified.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(sleeps).toHaveLength(2);
  });

  it('does not retry a 400 (HttpError) and gives up after maxAttempts (RetryError)', async () => {
    const url400 = await listen(async () => [400]);
    const sender = new WebhookSender({ secret: SECRET, sleep: noSleep, maxAttempts: 3 });
    await expect(sender.deliver(url400, message)).rejects.toSatisfy((e) => HttpError.isInstance(e) && e.status === 400);
    await new Promise<void>((r) => server!.close(() => r()));
    let hits = 0;
    const url503 = await listen(async () => (hits++, [503]));
    await expect(sender.deliver(url503, message)).rejects.toSatisfy(
      (e) => RetryError.isInstance(e) && e.errors.length === 3,
    );
    expect(hits).toBe(3);
  });

  it('retries network errors (nothing listening)', async () => {
    const url = await listen(async () => [200]);
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const sender = new WebhookSender({ secret: SECRET, sleep: noSleep, maxAttempts: 2, timeoutMs: 2000 });
    await expect(sender.deliver(url, message)).rejects.toSatisfy(
      (e) => RetryError.isInstance(e) && e.errors.length === 2,
    );
  });

  it('a worker reports by webhook and the client records it; forged, altered and replayed webhooks change nothing', async () => {
    const broker = new MemoryBroker();
    const store = new MemoryJobStore();
    const serverT = new MemoryTransport({ broker });
    const client = new JobClient({
      transport: serverT,
      store,
      webhookSecrets: [SECRET],
      replayCache: new MemoryReplayCache(),
    });
    await client.start();
    const received: { raw: Buffer; signature: string }[] = [];
    const outcomes: string[] = [];
    const url = await listen(async (req, raw) => {
      received.push({ raw, signature: String(req.headers[SIGNATURE_HEADER]) });
      try {
        outcomes.push((await client.handleWebhook(raw, req.headers)).outcome);
        return [204];
      } catch (error) {
        outcomes.push(error instanceof WebhookVerificationError ? error.rejection : 'error');
        return [error instanceof WebhookVerificationError ? 401 : 400];
      }
    });
    // a separate client without an events consumer would also work; here the worker reports both ways
    const workerT = new MemoryTransport({ broker });
    const worker = new JobWorker({
      transport: workerT,
      handler: async () => sampleResult(),
      webhooks: new WebhookSender({ secret: SECRET, sleep: noSleep }),
    });
    await worker.start();
    const job = await client.send(new RequestAnalysis(sampleRequestInput({ callbackUrl: url })));
    await pollJob((id) => store.get(id), job.jobId, { intervalMs: 10, timeoutMs: 10_000 });
    for (let i = 0; i < 100 && received.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    // succeeded (a quick job publishes no accepted: see `JobWorkerOptions.acceptedAfterMs`)
    expect(received.map((r) => JSON.parse(r.raw.toString('utf8')) as { type: string }).map((m) => m.type)).toEqual([
      'analysis.succeeded',
    ]);
    expect(outcomes.filter((o) => !['applied', 'duplicate'].includes(o))).toEqual([]);

    // a second job that only webhooks will move
    const other = await client.send(new RequestAnalysis(sampleRequestInput()));
    await worker.stop({ graceMs: 0 });
    const succeeded = encodeMessage(
      createMessage({ type: 'analysis.succeeded', jobId: other.jobId, workerId: 'evil', result: sampleResult() }),
    );
    const post = (raw: Buffer | string, signature: string) =>
      fetch(url, {
        method: 'POST',
        body: raw,
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature },
      }).then((r) => r.status);
    expect(await post(succeeded, signWebhook(succeeded, OTHER))).toBe(401); // forged
    const genuine = signWebhook(succeeded, SECRET);
    expect(await post(succeeded.toString().replace('"volumeMl":12.5', '"volumeMl":1250'), genuine)).toBe(401); // altered
    expect(await post(succeeded, signWebhook(succeeded, SECRET, Math.floor(Date.now() / 1000) - 3600))).toBe(401); // stale
    expect((await store.get(other.jobId))?.state).toBe('queued');
    // cancel it, then the genuine one arrives: refused by the state machine; replaying it: refused by the cache
    await client.send(new CancelAnalysis({ jobId: other.jobId, cancelledBy: 'u' }));
    expect(await post(succeeded, genuine)).toBe(204);
    expect(outcomes.at(-1)).toBe('refused');
    expect(await post(succeeded, genuine)).toBe(401);
    expect(outcomes.at(-1)).toBe('replayed');
    expect(outcomes.filter((o) => o === 'mismatch')).toHaveLength(2);
    expect(outcomes).toContain('expired');
    expect(await store.get(other.jobId)).toMatchObject({ state: 'cancelled', result: null });
    await client.stop();
    await workerT.close();
    await serverT.close();
  });
});
