/**
 * The Python worker's signed webhooks are the protocol's: `WebhookSender.deliver` (Python) POSTs an event to an HTTP
 * server on 127.0.0.1 that checks it with `@cdss/ai-jobs`' own `verifyWebhook` and `decodeMessage` (TypeScript); a
 * wrong secret is refused there, and the sender retries a 503.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessage, MemoryReplayCache, verifyWebhook, WebhookVerificationError } from '@cdss/ai-jobs';
import { python, venvAvailable, workerDir } from './venv.js';
import { listenOnFreePort } from '@cdss/core/testing';

const venv = venvAvailable('Python worker webhooks');
const SECRET = 'a-webhook-secret-of-40-characters-------';

/** Runs the Python sender against `url`; resolves with its stdout (status and attempts) or rejects with stderr. */
function pythonDeliver(url: string, secret: string): Promise<string> {
  const script = `
import json, sys
from cdss_worker.protocol import create_message
from cdss_worker.webhooks import WebhookSender
message = create_message("analysis.progress", "0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70", workerId="py", stage="inference", percent=40)
sender = WebhookSender(sys.argv[2], base_delay_s=0.05)
print(json.dumps(sender.deliver(sys.argv[1], message)))
`;
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', script, url, secret], { cwd: workerDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(err.trim().split('\n').at(-1)))));
  });
}

describe.runIf(venv)('the Python worker signs webhooks as @cdss/ai-jobs verifies them', () => {
  let server: Server;
  let url: string;
  const accepted: string[] = [];
  let failNext = 0;
  const replayCache = new MemoryReplayCache();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          if (failNext > 0) {
            failNext--;
            res.writeHead(503, { 'retry-after': '0' }).end();
            return;
          }
          const body = Buffer.concat(chunks);
          try {
            await verifyWebhook({ body, signature: req.headers['cdss-signature'], secrets: SECRET, replayCache });
          } catch (error) {
            res.writeHead(error instanceof WebhookVerificationError ? 401 : 500).end();
            return;
          }
          const decoded = decodeMessage(body);
          if (!decoded.ok || req.headers['cdss-event-type'] !== decoded.message.type) {
            res.writeHead(400).end();
            return;
          }
          accepted.push(`${decoded.message.type} ${String(req.headers['cdss-message-id'])}`);
          res.writeHead(204).end();
        })();
      });
    });
    await listenOnFreePort(server);
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/api/ai/webhook`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('delivers an event that verifyWebhook and decodeMessage accept, after retrying a 503', async () => {
    failNext = 1;
    expect(JSON.parse(await pythonDeliver(url, SECRET))).toEqual([204, 2]);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatch(/^analysis\.progress [0-9a-f-]{36}$/);
  }, 60_000);

  it('is refused with another secret, and the sender does not retry a 401', async () => {
    await expect(pythonDeliver(url, 'another-secret-of-enough-length')).rejects.toThrow(/401/);
    expect(accepted).toHaveLength(1);
  }, 60_000);
});
