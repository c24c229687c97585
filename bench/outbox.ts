/**
 * MemoryOutbox cost per write at a backlog of 100,000 pending writes vs 1,000: enqueue, claim and deliver.
 *
 * The sandbox's outbox sits on the request path (every audited group of reads enqueues one FHIR batch) and its
 * processor claims due writes every second, so its operations must not grow with the backlog a FHIR outage leaves.
 * Each side fills a fresh `MemoryOutbox` with BACKLOG writes under distinct keys (as audit batches have), then, in
 * a timed loop, enqueues one write, claims up to 50 due writes and marks each delivered, so the backlog stays
 * where it is; `stats()` (the backlog gauge) is read every 100 cycles. The figure is delivered writes per second.
 * The baseline is the same loop at a backlog of 1,000: with O(log n) structures the two are close (ratio near 1);
 * with a scan per claim the big backlog costs about 100 times more per claim.
 *
 * Settings (environment): BENCH_BACKLOG (100000, max 500000), BENCH_ROUND_MS (1000, max 5000), BENCH_ROUNDS
 * (5, max 10). Rounds alternate sides (ABBA) after a warm-up of each; medians reported. About 20 s.
 */
import { MemoryOutbox, type FhirWrite } from '@cdss/fhir-mapper';
import { intEnv, median } from './_lib.js';

const BACKLOG = intEnv('BENCH_BACKLOG', 100_000, 500_000, 1_000);
const SMALL = 1_000;
const ROUND_MS = intEnv('BENCH_ROUND_MS', 1_000, 5_000, 100);
const ROUNDS = intEnv('BENCH_ROUNDS', 5, 10);

let n = 0;
const write = (): FhirWrite => {
  const value = `v${n++}`;
  return {
    kind: 'upsert',
    resource: { resourceType: 'Patient', identifier: [{ system: 'urn:bench', value }] } as Extract<
      FhirWrite,
      { kind: 'upsert' }
    >['resource'],
    identifier: { system: 'urn:bench', value },
  };
};

/** A filled outbox with its own clock (advanced 1 ms per cycle, so every write is due). */
async function filled(backlog: number): Promise<{ outbox: MemoryOutbox; clock: { t: number } }> {
  const clock = { t: 0 };
  const outbox = new MemoryOutbox({ now: () => clock.t });
  for (let i = 0; i < backlog; i++) await outbox.enqueue(write(), { key: `batch:${n}` });
  return { outbox, clock };
}

/** Delivered writes per second over `ms`, keeping the backlog level. */
async function run(side: { outbox: MemoryOutbox; clock: { t: number } }, ms: number): Promise<number> {
  const { outbox, clock } = side;
  let delivered = 0;
  const start = performance.now();
  for (let cycle = 0; performance.now() - start < ms; cycle++) {
    clock.t++;
    for (let i = 0; i < 50; i++) await outbox.enqueue(write(), { key: `batch:${n}` });
    for (const item of await outbox.claimDue(clock.t, 50, 60_000)) {
      await outbox.markDelivered(item.id);
      delivered++;
    }
    if (cycle % 100 === 0) await outbox.stats();
  }
  return (delivered * 1000) / (performance.now() - start);
}

const big = await filled(BACKLOG);
const small = await filled(SMALL);
const pendingBefore = [(await big.outbox.stats()).pending, (await small.outbox.stats()).pending];
await run(big, 300);
await run(small, 300);
const bigRounds: number[] = [];
const smallRounds: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 4 === 0 || r % 4 === 3 ? [big, small] : [small, big];
  for (const side of order) (side === big ? bigRounds : smallRounds).push(await run(side, ROUND_MS));
  process.stdout.write(
    `round ${r + 1}: backlog ${BACKLOG}: ${Math.round(bigRounds[r] ?? 0)} writes/s; backlog ${SMALL}: ${Math.round(smallRounds[r] ?? 0)} writes/s\n`,
  );
}
const pendingAfter = [(await big.outbox.stats()).pending, (await small.outbox.stats()).pending];
if (pendingAfter[0] !== pendingBefore[0] || pendingAfter[1] !== pendingBefore[1])
  throw new Error(`the backlog moved: ${pendingBefore.join('/')} → ${pendingAfter.join('/')}`);
const value = Math.round(median(bigRounds));
const baseline = Math.round(median(smallRounds));
process.stdout.write(
  `median of ${ROUNDS} rounds of ${ROUND_MS} ms: ${value} writes/s (enqueue + claim + deliver) at a backlog of ${BACKLOG}, ` +
    `${baseline} at ${SMALL}; ${(1e6 / value).toFixed(1)} vs ${(1e6 / baseline).toFixed(1)} µs per write\n`,
);
process.stdout.write(
  `${JSON.stringify({
    bench: 'outbox',
    unit: 'writes/s',
    value,
    baseline,
    baseline_name: `the same MemoryOutbox loop at a backlog of ${SMALL} pending writes`,
    ratio: Number((value / baseline).toFixed(3)),
  })}\n`,
);
