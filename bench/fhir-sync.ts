/**
 * Conditional upserts/s to HAPI FHIR through @cdss/fhir-mapper's FhirAdapter vs plain fhir-kit-client creates, same server and run.
 *
 * The adapter's `upsert` is what the sync uses: a conditional create (`POST` with `If-None-Exist:
 * identifier=<system>|<value>`; HAPI resolves the match URL first), and for an existing identifier an
 * update by id with `If-Match`; serialised per identifier, with retries. The baseline is a
 * plain `client.create()` (POST, no match URL) through the same fhir-kit-client instance. Each write is
 * a mapped OpenEMR patient with a fresh identifier; BENCH_CONCURRENCY writes are kept in flight. Timed
 * rounds alternate between the two after a warm-up; medians reported. A second line measures re-syncs
 * (upserts of identifiers that already exist, with a changed field: conditional create + If-Match update).
 *
 * Needs HAPI: `npm run services -- start hapi-fhir` (or CDSS_TEST_FHIR_URL pointing at a FHIR server).
 * Settings (environment): BENCH_CONCURRENCY (default 8, max 64), BENCH_ROUND_MS (default 2000, max
 * 5000), BENCH_ROUNDS (default 3, max 6): about 15 s with the defaults.
 */
import { randomUUID } from 'node:crypto';
import type { Patient } from 'fhir/r4.js';
import { FhirAdapter, patientToFhir } from '@cdss/fhir-mapper';
import { sampleOpenEmrPatient } from '@cdss/fhir-mapper/testing';
import { requireService } from '@cdss/core/testing';
import { intEnv, median } from './_lib.js';

const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 8, 64);
const ROUND_MS = intEnv('BENCH_ROUND_MS', 2000, 5000);
const ROUNDS = intEnv('BENCH_ROUNDS', 3, 6);

const hapi = await requireService('hapi-fhir', { ci: false });
if (!hapi.available) {
  process.stderr.write(`${hapi.reason ?? 'HAPI FHIR is not running'}\n`);
  process.exit(1);
}
const adapter = new FhirAdapter({ baseUrl: hapi.url });
const RUN = randomUUID().slice(0, 8);
const system = `urn:cdss:bench:${RUN}`;
let seq = 0;

function newPatient(): { resource: Patient; identifier: { system: string; value: string } } {
  const value = `p-${seq++}`;
  const resource = patientToFhir({ ...sampleOpenEmrPatient, uuid: randomUUID(), pid: String(seq) });
  resource.identifier = [{ system, value }, ...(resource.identifier ?? [])];
  return { resource, identifier: { system, value } };
}

/** Writes/s: CONCURRENCY workers call `op` until ROUND_MS has passed. */
async function round(op: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() - t0 < ROUND_MS) {
      await op();
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / ((performance.now() - t0) / 1000);
}

const upsertNew = async (): Promise<unknown> => {
  const { resource, identifier } = newPatient();
  return adapter.upsert(resource, identifier);
};
const plainCreate = async (): Promise<unknown> =>
  adapter.client.create({ resourceType: 'Patient', body: newPatient().resource as never });
const existing: { resource: Patient; identifier: { system: string; value: string } }[] = [];
let resyncIndex = 0;
const upsertExisting = async (): Promise<unknown> => {
  const item = existing[resyncIndex++ % existing.length] as (typeof existing)[number];
  item.resource.active = !item.resource.active;
  return adapter.upsert(item.resource, item.identifier);
};

// warm-up (HAPI's first writes compile queries and fill caches)
for (let i = 0; i < 20; i++) {
  const p = newPatient();
  await adapter.upsert(p.resource, p.identifier);
  existing.push(p);
  await plainCreate();
}
for (let i = 0; i < 40; i++) {
  const p = newPatient();
  await adapter.upsert(p.resource, p.identifier);
  existing.push(p);
}
const ups: number[] = [];
const creates: number[] = [];
const resyncs: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  if (i % 2 === 0) {
    ups.push(await round(upsertNew));
    creates.push(await round(plainCreate));
  } else {
    creates.push(await round(plainCreate));
    ups.push(await round(upsertNew));
  }
  resyncs.push(await round(upsertExisting));
  process.stdout.write(
    `round ${i + 1}: adapter upsert (new) ${(ups[i] as number).toFixed(1)}/s, plain create ${(creates[i] as number).toFixed(1)}/s, adapter upsert (existing) ${(resyncs[i] as number).toFixed(1)}/s\n`,
  );
}
process.stdout.write(
  `re-sync (existing identifiers: conditional create + If-Match update): ${median(resyncs).toFixed(1)} writes/s\n`,
);
const value = Number(median(ups).toFixed(1));
const baseline = Number(median(creates).toFixed(1));
process.stdout.write(
  `${JSON.stringify({ bench: 'fhir-sync', unit: 'writes/s', value, baseline, baseline_name: 'plain fhir-kit-client create (POST, no match URL)', ratio: Number((value / baseline).toFixed(3)) })}\n`,
);
