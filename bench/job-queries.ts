/**
 * A patient's analyses among 50,000 jobs in MariaDB: the indexed page the server now runs for
 * `GET /api/analyses?patient=` against the query it ran before (the oldest 10,000 jobs, filtered in memory).
 *
 * Needs MariaDB (`npm run services -- start mariadb`; URL from CDSS_TEST_MYSQL_URL or the default). Fills tables of its
 * own (a random prefix), dropped at the end. BENCH_JOBS (default 50000), BENCH_ROUNDS (default 3), BENCH_QUERIES per
 * round (default 200). Prints the median over the rounds of each round's median latency; the last line is the JSON.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { MySqlJobStore } from '@cdss/ai-jobs/mysql';
import { sampleRequest, sampleResult } from '@cdss/ai-jobs/testing';
import { requireService } from '@cdss/core/testing';
import { intEnv, median } from './_lib.js';

const JOBS = intEnv('BENCH_JOBS', 50_000, 1_000_000, 1_000);
const ROUNDS = intEnv('BENCH_ROUNDS', 3, 20);
const QUERIES = intEnv('BENCH_QUERIES', 200, 10_000);
const PATIENTS = Math.max(1, Math.floor(JOBS / 10));

const svc = await requireService('mariadb', { log: (line) => process.stderr.write(`${line}\n`) });
if (!svc.available) process.exit(2);
const prefix = `bench_jobs_${randomBytes(3).toString('hex')}_`;
const store = await MySqlJobStore.open({ url: svc.url, tablePrefix: prefix });
const db = mysql.createPool({ uri: svc.url, connectionLimit: 2 });

/** 50,000 jobs, ten per patient, created over a year: rows written straight into the store's table. */
async function seed(): Promise<void> {
  const template = sampleRequest();
  const start = Date.now() - 365 * 24 * 3600_000;
  for (let batch = 0; batch < JOBS / 1000; batch++) {
    const rows: unknown[][] = [];
    for (let i = 0; i < 1000; i++) {
      const n = batch * 1000 + i;
      const jobId = `${(0x10000000 + n).toString(16)}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
      const createdAt = new Date(start + n * 600_000).toISOString();
      const patientRef = `Patient/bench-${n % PATIENTS}`;
      const record = {
        jobId,
        idempotencyKey: `bench-${n}`,
        state: 'succeeded',
        request: { ...template, jobId, idempotencyKey: `bench-${n}`, patientRef, createdAt },
        createdAt,
        updatedAt: createdAt,
        publishedAt: createdAt,
        attempt: 1,
        workerId: 'bench',
        progress: null,
        result: sampleResult(),
        failure: null,
        cancellation: null,
        reaps: 0,
      };
      const at = createdAt.replace('T', ' ').replace('Z', '');
      rows.push([
        jobId,
        `bench-${n}`,
        'succeeded',
        JSON.stringify(record),
        at,
        at,
        at,
        patientRef,
        template.studyInstanceUid,
      ]);
    }
    await db.query(
      `INSERT INTO \`${prefix}jobs\` (job_id, idempotency_key, state, record, created_at, updated_at, published_at, patient_ref, study_uid) VALUES ?`,
      [rows],
    );
  }
}

async function latencies(query: (patientRef: string) => Promise<number>): Promise<number> {
  const ms: number[] = [];
  for (let q = 0; q < QUERIES; q++) {
    const patientRef = `Patient/bench-${(q * 7919) % PATIENTS}`;
    const t0 = performance.now();
    const found = await query(patientRef);
    ms.push(performance.now() - t0);
    if (found === 0) throw new Error(`no jobs found for ${patientRef}`);
  }
  return median(ms);
}

try {
  process.stderr.write(`seeding ${JOBS} jobs for ${PATIENTS} patients into ${prefix}jobs\n`);
  await seed();
  const page: number[] = [];
  const capped: number[] = [];
  let cappedMisses = 0;
  for (let round = 0; round < ROUNDS; round++) {
    page.push(await latencies(async (patientRef) => (await store.page({ patientRef, limit: 50 })).jobs.length));
    capped.push(
      await latencies(async (patientRef) => {
        const mine = (await store.list({ limit: 10_000 })).filter((j) => j.request.patientRef === patientRef);
        if (mine.length < 10) cappedMisses++;
        return Math.max(1, mine.length);
      }),
    );
    process.stderr.write(
      `round ${round + 1}: indexed page ${page.at(-1)!.toFixed(2)} ms, oldest 10,000 filtered ${capped.at(-1)!.toFixed(1)} ms (median of ${QUERIES})\n`,
    );
  }
  const value = median(page);
  const baseline = median(capped);
  process.stderr.write(
    `the capped query missed analyses for ${cappedMisses} of ${ROUNDS * QUERIES} look-ups (the jobs past the first 10,000)\n`,
  );
  process.stdout.write(
    `${JSON.stringify({
      bench: 'job-queries',
      unit: 'ms',
      value: Math.round(value * 100) / 100,
      baseline: Math.round(baseline * 100) / 100,
      baseline_name: `oldest 10,000 of ${JOBS} jobs filtered in memory (the server before #16)`,
      ratio: Math.round((value / baseline) * 1000) / 1000,
      jobs: JOBS,
    })}\n`,
  );
} finally {
  await store.dropTables();
  await store.close();
  await db.end();
}
