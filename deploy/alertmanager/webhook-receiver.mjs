#!/usr/bin/env node
/**
 * Example Alertmanager webhook receiver (payload version 4): logs one JSON line per notification on stdout
 * ({receiver, status, alerts:[{alertname, severity, status, instance, job, port, summary, startsAt}]}) and answers 200.
 * Replace the log line with a call to your pager, chat or ticket system. Alert labels and annotations of the CDSS
 * rules carry no patient data, so logging them is safe.
 *
 *   WEBHOOK_PORT=9095 WEBHOOK_HOST=0.0.0.0 node webhook-receiver.mjs
 *
 * Only POST /alerts/<anything> is accepted; GET /healthz answers 200 for the container health check.
 * Bodies over 1 MiB or that are not Alertmanager JSON are refused with 400/413.
 */
import { createServer } from 'node:http';

const port = Number(process.env.WEBHOOK_PORT ?? 9095);
const host = process.env.WEBHOOK_HOST ?? '127.0.0.1';
const MAX_BYTES = 1024 * 1024;

function summarise(body, receiverPath) {
  if (typeof body !== 'object' || body === null || !Array.isArray(body.alerts) || typeof body.status !== 'string') {
    throw new Error('not an Alertmanager webhook payload');
  }
  return {
    path: receiverPath,
    receiver: String(body.receiver ?? ''),
    status: body.status,
    groupKey: String(body.groupKey ?? ''),
    alerts: body.alerts.map((a) => ({
      alertname: a?.labels?.alertname,
      severity: a?.labels?.severity,
      status: a?.status,
      job: a?.labels?.job,
      instance: a?.labels?.instance,
      port: a?.labels?.port,
      summary: a?.annotations?.summary,
      startsAt: a?.startsAt,
    })),
  };
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (req.method !== 'POST' || !req.url?.startsWith('/alerts/')) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BYTES) {
      res.writeHead(413).end();
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    try {
      const line = summarise(JSON.parse(Buffer.concat(chunks).toString('utf8')), req.url);
      process.stdout.write(`${JSON.stringify(line)}\n`);
      res.writeHead(200).end();
    } catch (error) {
      process.stderr.write(`webhook: refused a payload: ${error instanceof Error ? error.message : String(error)}\n`);
      res.writeHead(400).end();
    }
  });
});

server.listen(port, host, () => {
  process.stderr.write(`webhook receiver listening on http://${host}:${server.address().port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => server.close(() => process.exit(0)));
