/**
 * deploy/nginx in front of the real reference server: real nginx, a generated self-signed certificate, two server
 * instances. HTTPS and wss:// through the proxy, the HTTP redirect, security headers, the body limit, Cloudflare
 * real-IP handling, gzip for JSON but not DICOM, static asset caching, and failover when an instance is stopped.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderNginx } from './nginx-render.js';
import {
  fetchRaw,
  freePort,
  requireBinaries,
  run,
  sandboxToken,
  selfSignedCertificate,
  spawnService,
  startReferenceServer,
  tempDir,
  waitFor,
  type ReferenceServer,
  type Spawned,
} from './support.js';

const bins = requireBinaries('deploy/nginx test', ['nginx', 'openssl'], 'nginx openssl');

describe.skipIf(!bins)('deploy/nginx in front of the reference server', () => {
  let dir: string;
  let ca: string;
  let servers: ReferenceServer[] = [];
  let nginx: Spawned | undefined;
  let https: string;
  let httpPort: number;
  let httpsPort: number;
  let secondPort: number;
  let dashboardDir: string;

  beforeAll(async () => {
    if (!bins) return;
    dir = tempDir('nginx');
    chmodSync(dir, 0o755); // nginx workers run as nobody
    const certDir = join(dir, 'certs');
    ca = selfSignedCertificate(bins.openssl, certDir);

    // A dashboard build: index.html, a hashed JS asset and a DICOM file (both large enough for gzip to apply).
    const dashboard = join(dir, 'dashboard');
    mkdirSync(join(dashboard, 'assets'), { recursive: true });
    writeFileSync(
      join(dashboard, 'index.html'),
      '<!doctype html><title>CDSS</title><script src="/assets/app-3f2a1c.js"></script>',
    );
    writeFileSync(join(dashboard, 'assets', 'app-3f2a1c.js'), `console.log(${JSON.stringify('x'.repeat(8000))});\n`);
    writeFileSync(
      join(dashboard, 'assets', 'scan-1.dcm'),
      Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.alloc(8000, 0x41)]),
    );

    // Two instances behind nginx. Sandbox tokens are signed per process, so the second instance is started only
    // for the failover test (until then nginx finds it refusing connections and uses the first).
    dashboardDir = dashboard;
    servers = [await startReferenceServer({ CDSS_DASHBOARD_DIR: dashboard })];
    secondPort = await freePort();
    httpPort = await freePort();
    httpsPort = await freePort();
    const conf = renderNginx({
      dir: join(dir, 'nginx'),
      httpPort,
      httpsPort,
      certDir,
      upstreams: [`127.0.0.1:${servers[0]!.port}`, `127.0.0.1:${secondPort}`],
      trustedProxy: '127.0.0.2',
    });
    const prefix = join(dir, 'nginx');
    const pid = `pid ${join(prefix, 'nginx.pid')};`;
    const check = run(bins.nginx, ['-t', '-q', '-e', join(prefix, 'error.log'), '-p', prefix, '-c', conf, '-g', pid]);
    expect(check.status, `nginx -t: ${check.stderr}`).toBe(0);
    nginx = spawnService(bins.nginx, [
      '-e',
      join(prefix, 'error.log'),
      '-p',
      prefix,
      '-c',
      conf,
      '-g',
      `daemon off; ${pid}`,
    ]);
    https = `https://localhost:${httpsPort}`;
    await waitFor('nginx on HTTPS', async () => (await fetchRaw(`${https}/healthz`, { ca })).status === 200, 20_000);
  });

  afterAll(async () => {
    await nginx?.stop('SIGQUIT');
    await Promise.all(servers.map((s) => s.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS (TLS 1.2 or 1.3 only) with the security headers, once each', async () => {
    const res = await fetchRaw(`${https}/healthz`, { ca });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text())).toMatchObject({ status: 'ok' });
    expect(['TLSv1.2', 'TLSv1.3']).toContain(res.tlsProtocol);
    expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains; preload');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['permissions-policy']).toContain('camera=()');
    // the server's own Content-Security-Policy passes through; nginx's version is hidden
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['server']).toBe('nginx');

    // the headers are on nginx's own error pages too
    const notFound = await fetchRaw(`${https}/metrics`, { ca });
    expect(notFound.status).toBe(404);
    expect(notFound.headers['strict-transport-security']).toContain('max-age=');
    expect(notFound.text()).not.toContain('cdss_http_request_duration_seconds');

    // the certificate is checked: without the CA the connection is refused
    await expect(fetchRaw(`${https}/healthz`)).rejects.toThrow(/self[- ]signed/i);
  });

  it('redirects plain HTTP to HTTPS, keeping path and query, and answers its own health check', async () => {
    const res = await fetchRaw(`http://127.0.0.1:${httpPort}/api/patients?name=rossi`, {
      headers: { host: 'localhost' },
    });
    expect(res.status).toBe(301);
    expect(res.headers['location']).toBe('https://localhost/api/patients?name=rossi');
    expect(res.headers['strict-transport-security']).toBeUndefined();
    const health = await fetchRaw(`http://127.0.0.1:${httpPort}/nginx-health`);
    expect(health.status).toBe(200);
  });

  it('carries an authenticated wss:// session through the proxy', async () => {
    const token = await sandboxToken(https, ca);
    const ws = new WebSocket(`wss://localhost:${httpsPort}/ws`, { ca });
    const messages: unknown[] = [];
    ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8'))));
    await new Promise<void>((done, fail) => {
      ws.once('open', () => done());
      ws.once('error', fail);
    });
    ws.send(JSON.stringify({ type: 'auth', token }));
    const ready = await waitFor(
      'the ready message',
      () => messages.find((m) => (m as { type?: string }).type === 'ready'),
      10_000,
    );
    expect(ready).toMatchObject({ type: 'ready' });
    // the session stays open across the proxy (the upgrade was not answered by nginx with a plain response)
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    await new Promise((done) => ws.once('close', done));
  });

  it('refuses a body over the server limit (1 MiB) with 413 from nginx; smaller bodies reach the server', async () => {
    const token = await sandboxToken(https, ca);
    const big = JSON.stringify({ note: 'x'.repeat(1_200_000) });
    const res = await fetchRaw(`${https}/api/patients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: big,
      ca,
    });
    expect(res.status).toBe(413);
    expect(res.text()).toContain('<center>nginx</center>'); // nginx's page, not the server's OperationOutcome
    // and no server instance saw it
    for (const server of servers) {
      const metrics = (await fetchRaw(`${server.url}/metrics`)).text();
      expect(metrics).not.toMatch(
        /cdss_http_request_duration_seconds_count\{method="POST",route="\/api\/patients",status="413"\}/,
      );
    }
    const small = await fetchRaw(`${https}/api/patients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'x'.repeat(500_000) }),
      ca,
    });
    expect(small.status).not.toBe(413);
    expect(small.headers['content-type']).toContain('json'); // answered by the server (a validation error)
  });

  it('takes the client IP from CF-Connecting-IP only when the peer is a trusted proxy', async () => {
    const headers = { 'cf-connecting-ip': '198.51.100.7' };
    await fetchRaw(`${https}/healthz?probe=untrusted`, { ca, headers, localAddress: '127.0.0.1' });
    await fetchRaw(`${https}/healthz?probe=trusted`, { ca, headers, localAddress: '127.0.0.2' });
    const lines = await waitFor(
      'both access log lines',
      () => {
        const parsed = readFileSync(join(dir, 'nginx', 'access.log'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('probe='))
          .map((l) => JSON.parse(l) as { remote_addr: string; peer_addr: string; request: string });
        return parsed.length >= 2 ? parsed : undefined;
      },
      5_000,
    );
    const untrusted = lines.find((l) => l.request.includes('probe=untrusted'));
    const trusted = lines.find((l) => l.request.includes('probe=trusted'));
    expect(untrusted).toMatchObject({ remote_addr: '127.0.0.1', peer_addr: '127.0.0.1' });
    expect(trusted).toMatchObject({ remote_addr: '198.51.100.7', peer_addr: '127.0.0.2' });
  });

  it('limits each client IP (limit_req): a burst past the rate gets 429 OperationOutcomes, other clients go on', async () => {
    // One address behind the trusted proxy floods; 127.0.0.1 is another client with its own budget.
    const headers = { 'cf-connecting-ip': '203.0.113.9' };
    const answers = await Promise.all(
      Array.from({ length: 120 }, () => fetchRaw(`${https}/healthz`, { ca, headers, localAddress: '127.0.0.2' })),
    );
    const throttled = answers.filter((r) => r.status === 429);
    const served = answers.filter((r) => r.status === 200);
    // 20 r/s with a burst of 40: at most the burst plus what the rate refills while the flood lasts gets through
    expect(throttled.length).toBeGreaterThan(40);
    expect(served.length).toBeGreaterThanOrEqual(40);
    expect(served.length + throttled.length).toBe(120);
    expect(throttled[0]?.headers['content-type']).toContain('application/fhir+json');
    expect(throttled[0]?.headers['retry-after']).toBe('1');
    expect(throttled[0]?.headers['strict-transport-security']).toContain('max-age=');
    expect(JSON.parse(throttled[0]!.text())).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'throttled' }],
    });
    expect((await fetchRaw(`${https}/healthz`, { ca })).status).toBe(200);
  });

  it('gzips JSON but not DICOM', async () => {
    const json = await fetchRaw(`${https}/openapi.json`, { ca, headers: { 'accept-encoding': 'gzip' } });
    expect(json.status).toBe(200);
    expect(json.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(json.body).toString('utf8'))).toHaveProperty('openapi');

    const dicom = await fetchRaw(`${https}/assets/scan-1.dcm`, { ca, headers: { 'accept-encoding': 'gzip' } });
    expect(dicom.status).toBe(200);
    expect(dicom.headers['content-type']).toBe('application/dicom');
    expect(dicom.headers['content-encoding']).toBeUndefined();
    expect(dicom.body.subarray(128, 132).toString('latin1')).toBe('DICM');
  });

  it('caches the dashboard assets in nginx as immutable; index.html stays no-cache', async () => {
    const first = await fetchRaw(`${https}/assets/app-3f2a1c.js`, { ca });
    const second = await fetchRaw(`${https}/assets/app-3f2a1c.js`, { ca });
    expect(first.status).toBe(200);
    expect(first.headers['x-cache-status']).toBe('MISS');
    expect(second.headers['x-cache-status']).toBe('HIT');
    expect(second.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(second.headers['x-frame-options']).toBe('DENY');
    const index = await fetchRaw(`${https}/`, { ca });
    expect(index.status).toBe(200);
    expect(index.headers['cache-control']).toBe('no-cache');
  });

  it('spreads requests over the instances and keeps answering when one is stopped', async () => {
    const second = await startReferenceServer({ CDSS_DASHBOARD_DIR: dashboardDir }, secondPort);
    servers.push(second);
    const first = servers[0]!;
    const served = async (server: ReferenceServer): Promise<number> => {
      const text = (await fetchRaw(`${server.url}/metrics`)).text();
      const m =
        /cdss_http_request_duration_seconds_count\{method="GET",route="\/openapi.json",status="200"\} (\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = await served(second);
    // nginx marked the second instance failed while it was down (fail_timeout=10s): wait until it is used again
    await waitFor(
      'a request reaching the second instance',
      async () => {
        await fetchRaw(`${https}/openapi.json`, { ca });
        return (await served(second)) > before;
      },
      30_000,
    );
    await first.stop();
    for (let i = 0; i < 6; i++) {
      const res = await fetchRaw(`${https}/healthz`, { ca });
      expect(res.status).toBe(200);
    }
    expect(second.child.exitCode).toBeNull();
  });
});
