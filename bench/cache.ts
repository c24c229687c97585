/**
 * Cache-hit reads/s through @cdss/cache's MySQL store (Cache.getOrLoad over MySqlStore) vs raw mysql2 PK selects.
 *
 * Needs MariaDB (`npm run services -- start mariadb`; URL from CDSS_TEST_MYSQL_URL or the default). Fills a private
 * table with BENCH_KEYS entries, then keeps BENCH_CONCURRENCY reads in flight over ONE mysql2 pool of
 * BENCH_POOL connections, shared by both sides so pool size and concurrency are equal:
 *   - cache: `cache.getOrLoad(key, loader)` on a Cache whose store is the MySqlStore (every read an L2 hit: one
 *     prepared SELECT, row validation, JSON.parse, deadline and breaker; the loader must never run);
 *   - baseline: `pool.execute('SELECT v, version, stored_at, expires_at, stale_until FROM t WHERE k = ?')`, the
 *     same row by primary key, nothing else.
 * Rounds alternate in ABBA order (cache, raw, raw, cache, ...) after an untimed warm-up; the median round is reported. Then L1 hits
 * (TieredStore with a warm in-process L1) are measured for comparison and printed. The table is dropped at the end.
 *
 * Settings (environment): BENCH_CONCURRENCY (16), BENCH_POOL (8), BENCH_KEYS (10000), BENCH_ROUND_MS (1000),
 * BENCH_ROUNDS (7 per side; short alternating rounds so that drift of this shared machine hits both alike).
 * About 20 s in all.
 */
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { requireService } from '@cdss/core/testing';
import { Cache, MemoryStore, TieredStore } from '@cdss/cache';
import { MySqlStore } from '@cdss/cache/mysql';
import { intEnv, median } from './_lib.js';

const concurrency = intEnv('BENCH_CONCURRENCY', 16, 256);
const poolSize = intEnv('BENCH_POOL', 8, 64);
const keyCount = intEnv('BENCH_KEYS', 10_000, 200_000);
const roundMs = intEnv('BENCH_ROUND_MS', 1_000, 20_000);
const rounds = intEnv('BENCH_ROUNDS', 7, 15);

function patient(i: number) {
  return {
    resourceType: 'Patient',
    id: `p${i}`,
    identifier: [{ system: 'urn:openemr:pid', value: String(i) }],
    name: [{ family: `Family${i}`, given: ['Given', `Middle${i % 7}`] }],
    gender: i % 2 === 0 ? 'female' : 'male',
    birthDate: `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 9}`,
    address: [{ city: 'Leeds', postalCode: `LS${i % 30} 1AA` }],
  };
}

interface Round {
  /** Completed reads per second. */
  rps: number;
  /** Client CPU (user + system) per read, in µs: steadier than rps on a busy machine. */
  cpuUs: number;
}

/** Keeps `concurrency` calls of `op` in flight for `ms`; returns reads/s and client CPU per read. */
async function drive(op: (key: string) => Promise<unknown>, ms: number, keys: readonly string[]): Promise<Round> {
  let done = 0;
  let cursor = Math.floor(Math.random() * keys.length);
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      cursor = (cursor + 7919) % keys.length; // stride through the keys: no two consecutive reads share a row
      await op(keys[cursor] as string);
      done++;
    }
  };
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpu0);
  return { rps: (done * 1000) / (performance.now() - started), cpuUs: (cpu.user + cpu.system) / done };
}

async function main(): Promise<void> {
  const svc = await requireService('mariadb', { log: (line) => process.stderr.write(`${line}\n`) });
  if (!svc.available) throw new Error(svc.reason ?? 'MariaDB is not running');
  const table = `bench_cache_${process.pid}`;
  const pool = mysql.createPool({ uri: svc.url, connectionLimit: poolSize, maxIdle: poolSize });
  const l2 = await MySqlStore.open({ pool, table, sweepIntervalMs: 0, queryTimeoutMs: 5_000 });
  try {
    // Fill through one bulk insert of exactly what the store would write.
    const now = Date.now();
    const far = now + 3_600_000;
    const keys = Array.from({ length: keyCount }, (_, i) => `patient:${i}`);
    for (let start = 0; start < keyCount; start += 2_000) {
      const rows = keys
        .slice(start, start + 2_000)
        .map((k, j) => [k, JSON.stringify(patient(start + j)), 1, now, far, far]);
      await pool.query(
        `INSERT INTO ${pool.escapeId(table)} (k, v, version, stored_at, expires_at, stale_until) VALUES ?`,
        [rows],
      );
    }
    let loaderCalls = 0;
    const loader = () => {
      loaderCalls++;
      return Promise.resolve({});
    };
    const l2Cache = new Cache({ store: l2, ttlMs: 3_600_000 });
    const rawSql = `SELECT v, version, stored_at, expires_at, stale_until FROM ${pool.escapeId(table)} WHERE k = ?`;
    const raw = (key: string) => pool.execute<RowDataPacket[]>(rawSql, [key]);
    const viaCache = (key: string) => l2Cache.getOrLoad(key, loader);

    // Same answer from both sides before timing anything.
    for (const i of [0, 1, keyCount - 1]) {
      const key = `patient:${i}`;
      const a = await viaCache(key);
      const [rows] = await raw(key);
      if (a.source !== 'l2' || JSON.stringify(a.value) !== rows[0]?.['v']) throw new Error(`mismatch for ${key}`);
    }

    await drive(viaCache, 1_000, keys); // warm-up, untimed
    await drive(raw, 1_000, keys);
    const cacheRounds: Round[] = [];
    const rawRounds: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      // ABBA order (cache first on even rounds, raw first on odd ones), so neither side always follows the other.
      if (r % 2 === 0) {
        cacheRounds.push(await drive(viaCache, roundMs, keys));
        rawRounds.push(await drive(raw, roundMs, keys));
      } else {
        rawRounds.push(await drive(raw, roundMs, keys));
        cacheRounds.push(await drive(viaCache, roundMs, keys));
      }
      const c = cacheRounds[r] as Round;
      const w = rawRounds[r] as Round;
      process.stdout.write(
        `round ${r + 1}: cache (MySQL store hits) ${Math.round(c.rps)} reads/s (${c.cpuUs.toFixed(1)} µs CPU/read), ` +
          `raw mysql2 PK select ${Math.round(w.rps)} /s (${w.cpuUs.toFixed(1)} µs CPU/read)\n`,
      );
    }
    if (loaderCalls !== 0) throw new Error(`loader ran ${loaderCalls} times: reads were not all cache hits`);

    // L1 hits for comparison: a warm in-process tier in front of the same L2.
    const l1 = new MemoryStore({ maxEntries: keyCount });
    const tiered = new Cache({ store: new TieredStore({ l1, l2, l1MaxTtlMs: 3_600_000 }), ttlMs: 3_600_000 });
    for (const key of keys) await tiered.getOrLoad(key, loader);
    const { rps: l1Rps } = await drive((key) => tiered.getOrLoad(key, loader), Math.min(roundMs, 2_000), keys);
    if (loaderCalls !== 0 || l1.size !== keyCount) throw new Error('L1 phase did not read only warm L1 entries');

    const value = Math.round(median(cacheRounds.map((x) => x.rps)));
    const baseline = Math.round(median(rawRounds.map((x) => x.rps)));
    const cpuCache = median(cacheRounds.map((x) => x.cpuUs));
    const cpuRaw = median(rawRounds.map((x) => x.cpuUs));
    process.stdout.write(
      `median of ${rounds} rounds of ${roundMs} ms, pool ${poolSize}, concurrency ${concurrency}, ${keyCount} keys: ` +
        `L2 (MySQL) hits ${value} reads/s vs raw mysql2 ${baseline} /s (${((100 * value) / baseline).toFixed(1)}%); ` +
        `client CPU per read ${cpuCache.toFixed(1)} vs ${cpuRaw.toFixed(1)} µs; ` +
        `L1 hits ${Math.round(l1Rps)} reads/s (${(l1Rps / value).toFixed(1)}x L2)\n`,
    );
    process.stdout.write(
      `${JSON.stringify({ bench: 'cache', unit: 'reads/s', value, baseline, baseline_name: 'raw mysql2 pool.execute PK select (same pool, same concurrency)', ratio: Number((value / baseline).toFixed(3)) })}\n`,
    );
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${pool.escapeId(table)}`).catch(() => undefined);
    await pool.query('DELETE FROM cdss_cache_schema WHERE table_name = ?', [table]).catch(() => undefined);
    await l2.close();
    await pool.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench cache failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
