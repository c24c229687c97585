/**
 * Load for a CPU profile of the reference server's cache-hit read (not a benchmark: it prints no ratio).
 *
 * Composes the server in sandbox mode in this process as `bench/server.ts` does, warms the cache, then keeps
 * BENCH_CONCURRENCY (16) cache-hit `GET /api/patients/{id}` in flight from an autocannon child process for
 * BENCH_PROFILE_MS (10 000) and exits at once, so the profile's last BENCH_PROFILE_MS are the load
 * (BENCH_PROFILE_TARGET=healthz loads GET /healthz with the token instead: the middleware alone):
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --conditions=@cdss/source --import tsx bench/_profile-server.ts
 *   node bench/_cpuprofile-summary.mjs /tmp/prof/<the larger file>.cpuprofile --last-ms 10000
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../examples/reference-server/src/config.js';
import { createLogger } from '../examples/reference-server/src/logger.js';
import { composeServer } from '../examples/reference-server/src/compose.js';
import { intEnv } from './_lib.js';
import { json, startLoadClient } from './_load.js';
import { freePort } from '@cdss/core/testing';

const concurrency = intEnv('BENCH_CONCURRENCY', 16, 256);
const ms = intEnv('BENCH_PROFILE_MS', 10_000, 60_000, 1_000);
const dataDir = await mkdtemp(join(tmpdir(), 'cdss-profile-server-'));
const config = loadConfig({
  CDSS_DATA_DIR: dataDir,
  CDSS_SANDBOX_STUDIES: '0',
  CDSS_WORKER: 'off',
  CDSS_LOG_LEVEL: 'silent',
  CDSS_RATE_LIMIT_PER_MINUTE: '100000000',
});
const composed = await composeServer(config, createLogger('silent'), 'profile');
const base = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
const token = (await json(`${base}/api/sandbox/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ userId: 'demo-physician' }),
})) as { access_token: string };
const headers = { authorization: `Bearer ${token.access_token}`, accept: 'application/json' };
const page = (await json(`${base}/api/patients?limit=1`, { headers })) as { items: Array<{ id: string }> };
const path =
  process.env['BENCH_PROFILE_TARGET'] === 'healthz'
    ? '/healthz'
    : `/api/patients/${encodeURIComponent(page.items[0]?.id ?? '')}`;
const target = { url: `${base}${path}`, headers };
const client = await startLoadClient();
await client.run(target, concurrency, 2_000); // warm-up
const result = await client.run(target, concurrency, ms);
process.stdout.write(`profile load: ${JSON.stringify(result)}\n`);
client.close();
// Exit at once (the profile's tail must be the load), after removing the temporary folder.
await rm(dataDir, { recursive: true, force: true });
process.exit(result.bad > 0 ? 1 : 0);
