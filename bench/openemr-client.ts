/**
 * Patient reads/s through @cdss/openemr-client (OAuth2 token, envelope + zod parse) vs bare axios, same OpenEMR emulator.
 *
 * The sandbox's OpenEMR emulator core (8.0 profile, in-memory, seeded) runs in a child process on 127.0.0.1:0.
 * Both sides read the same seeded patients by uuid (`GET /apis/default/api/patient/{puuid}`) with the same
 * bearer-token scopes, keeping BENCH_CONCURRENCY requests in flight, in interleaved rounds (order
 * alternating) after an untimed warm-up of each. The medians of the rounds are reported.
 * - value: `client.patients.get(uuid)` (token via the password grant, envelope handling, zod validation).
 * - baseline: bare axios GET with a bearer token from the same grant, `JSON.parse` only.
 *
 * Settings (environment): BENCH_CONCURRENCY (default 16, max 256), BENCH_ROUND_MS (default 1000, max
 * 5000), BENCH_ROUNDS (default 6, max 8, per side: about 15 s in all with the defaults).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import axios from 'axios';
import { createServer } from 'node:http';
import { OpenEmrEngine, SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { CDSS_SCOPES, OpenEmrOAuth, createOpenEmrClient } from '@cdss/openemr-client';
import { listenOnFreePort } from '@cdss/core/testing';

function intEnv(name: string, fallback: number, max: number): number {
  const raw = Number(process.env[name] ?? fallback);
  return Number.isInteger(raw) && raw > 0 ? Math.min(raw, max) : fallback;
}

if (process.argv.includes('--serve')) {
  // The emulator's core behind node:http (what its Express router does, without Express in this workspace).
  const engine = new OpenEmrEngine({ version: '8.0' });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const out = await engine.handle({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks).toString('utf8') : undefined,
        origin: `http://${req.headers.host ?? '127.0.0.1'}`,
      });
      res.writeHead(out.status, out.headers);
      res.end(out.body);
    });
  });
  void listenOnFreePort(server).then(() => process.send?.({ port: (server.address() as AddressInfo).port }));
} else {
  const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 16, 256);
  const ROUND_MS = intEnv('BENCH_ROUND_MS', 1000, 5000);
  const ROUNDS = intEnv('BENCH_ROUNDS', 6, 8);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);

  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`emulator exited with ${String(code)}`)));
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    const login = {
      clientId: SEED_CLIENT.clientId,
      clientSecret: SEED_CLIENT.clientSecret,
      username: SEED_ADMIN.username,
      password: SEED_ADMIN.password,
    };
    const emr = createOpenEmrClient({
      baseUrl,
      version: '8.0',
      auth: { kind: 'password', ...login, scope: CDSS_SCOPES },
    });
    const uuids = (await emr.patients.list()).map((p) => p.uuid);
    const token = (
      await new OpenEmrOAuth({ baseUrl, clientId: login.clientId, clientSecret: login.clientSecret }).passwordGrant({
        ...login,
        scope: CDSS_SCOPES,
      })
    ).accessToken;
    const bare = axios.create({
      baseURL: `${baseUrl}/apis/default/api`,
      headers: { authorization: `Bearer ${token}` },
      responseType: 'text',
    });

    let i = 0;
    const next = (): string => uuids[i++ % uuids.length] ?? '';
    const sides = {
      client: async (): Promise<void> => {
        const p = await emr.patients.get(next());
        if (p === undefined) throw new Error('patient missing');
      },
      axios: async (): Promise<void> => {
        const res = await bare.get<string>(`/patient/${next()}`);
        if ((JSON.parse(res.data) as { data?: unknown }).data === undefined) throw new Error('patient missing');
      },
    };
    const round = async (read: () => Promise<void>, ms: number): Promise<number> => {
      let count = 0;
      const end = performance.now() + ms;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < end) {
            await read();
            count++;
          }
        }),
      );
      return count / ((performance.now() - t0) / 1000);
    };
    await round(sides.axios, 500);
    await round(sides.client, 500);
    const results: Record<'client' | 'axios', number[]> = { client: [], axios: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['client', 'axios'] as const) : (['axios', 'client'] as const);
      for (const side of order) results[side].push(await round(sides[side], ROUND_MS));
      log(
        `round ${r + 1}/${ROUNDS}: client ${results.client.at(-1)?.toFixed(0)} reads/s, axios ${results.axios.at(-1)?.toFixed(0)} reads/s`,
      );
    }
    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      const m = Math.floor(s.length / 2);
      return s.length % 2 === 0 ? ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2 : (s[m] ?? 0);
    };
    const value = median(results.client);
    const baseline = median(results.axios);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'openemr-client',
        unit: 'reads/s',
        value: Math.round(value),
        baseline: Math.round(baseline),
        baseline_name: 'bare axios GET /api/patient/{puuid}',
        ratio: Number((value / baseline).toFixed(3)),
      })}\n`,
    );
  } finally {
    child.kill();
  }
}
