import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from 'mysql2/promise';
import { ValidationError } from '@cdss/core';
import { freePort, requireService } from '@cdss/core/testing';
import { createEmbeddedFhirServer } from '@cdss/sandbox';
import type { Bundle, Patient } from 'fhir/r4.js';
import { FhirAdapter } from '../adapter/fhir-adapter.js';
import { MemoryOutbox } from './memory-outbox.js';
import { MySqlOutbox } from './mysql-outbox.js';
import { OutboxProcessor } from './processor.js';
import type { BatchEntriesText, FhirWrite, SyncOutbox } from './types.js';

const mariadb = await requireService('mariadb');
const hapi = await requireService('hapi-fhir');
const SYS = `urn:cdss:test:outbox-unit:${randomUUID().slice(0, 8)}`;

function upsert(value: string, family = 'Unit', extra: Record<string, unknown> = {}): FhirWrite {
  const identifier = { system: SYS, value };
  return {
    kind: 'upsert',
    resource: { resourceType: 'Patient', identifier: [identifier], name: [{ family }], ...extra } as Patient,
    identifier,
  };
}

let pool: Pool | undefined;
const tables: string[] = [];
afterAll(async () => {
  for (const t of tables) await pool?.query(`DROP TABLE IF EXISTS \`${t}\``);
  await pool?.end();
});

async function mysqlOutbox(clock?: { now(): number }): Promise<MySqlOutbox> {
  pool ??= createPool({ uri: mariadb.url, connectionLimit: 4 });
  const table = `fhir_outbox_unit_${randomUUID().slice(0, 8)}`;
  tables.push(table);
  const o = new MySqlOutbox({ pool, table, ...(clock ? { clock } : {}) });
  await o.ensureSchema();
  return o;
}

const kinds: { name: string; skip: boolean; make(clock?: { now(): number }): Promise<SyncOutbox> }[] = [
  { name: 'memory', skip: false, make: async (clock) => new MemoryOutbox(clock) },
  { name: 'MySQL', skip: !mariadb.available, make: mysqlOutbox },
];

describe.each(kinds)('$name outbox', ({ skip, make }) => {
  it.skipIf(skip)('rejects a malformed write with ValidationError and stores nothing', async () => {
    const outbox = await make();
    await expect(
      outbox.enqueue({
        kind: 'upsert',
        resource: { nope: true },
        identifier: { system: '', value: 'x' },
      } as unknown as FhirWrite),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(await outbox.stats()).toEqual({ pending: 0, delivered: 0, dead: 0 });
  });

  it.skipIf(skip)('claims only the oldest pending item of each key, and only when due', async () => {
    const outbox = await make({ now: () => 1_000 });
    const a1 = await outbox.enqueue(upsert('a'), { key: 'A' });
    const a2 = await outbox.enqueue(upsert('a', 'Later'), { key: 'A' });
    const b1 = await outbox.enqueue(upsert('b'), { key: 'B' });
    const first = await outbox.claimDue(1_000, 10, 5_000);
    expect(first.map((i) => i.id)).toEqual([a1.id, b1.id]);
    // leased: a second claimer sees nothing
    expect(await outbox.claimDue(1_001, 10, 5_000)).toEqual([]);
    await outbox.markFailed(a1.id, 'HttpError no response', 9_000);
    await outbox.markDelivered(b1.id);
    // a1 backs off until 9000, and a2 must wait behind it
    expect(await outbox.claimDue(2_000, 10, 5_000)).toEqual([]);
    const later = await outbox.claimDue(9_000, 10, 5_000);
    expect(later.map((i) => [i.id, i.attempts, i.lastError])).toEqual([[a1.id, 1, 'HttpError no response']]);
    await outbox.markDelivered(a1.id);
    expect((await outbox.claimDue(9_001, 10, 5_000)).map((i) => i.id)).toEqual([a2.id]);
    // the oldest pending write's age feeds the outbox-backlog alert
    expect(await outbox.stats()).toEqual({ pending: 1, delivered: 2, dead: 0, oldestPendingAt: 1_000 });
  });

  describe('with an embedded FHIR server', () => {
    let url = '';
    let close: () => Promise<void> = async () => undefined;
    beforeAll(async () => {
      ({ url, close } = await createEmbeddedFhirServer().listen(await freePort()));
    });
    afterAll(async () => close());

    it.skipIf(skip)('delivers valid writes and dead-letters an invalid one with its OperationOutcome', async () => {
      const outbox = await make();
      const adapter = new FhirAdapter({ baseUrl: url, retry: false });
      const processor = new OutboxProcessor({ outbox, adapter, baseDelayMs: 5, maxDelayMs: 20 });
      await outbox.enqueue(upsert('good-1'));
      const bad = await outbox.enqueue(upsert('bad', 'Bad', { active: 'yes' }));
      await outbox.enqueue(upsert('good-2'));
      const r = await processor.drainUntilEmpty(10_000);
      expect(r).toMatchObject({ empty: true, delivered: 2, dead: 1 });
      const dead = await outbox.deadLetters();
      expect(dead).toHaveLength(1);
      expect(dead[0]?.id).toBe(bad.id);
      expect(dead[0]?.lastError).toMatch(/FhirInvalidResourceError 400/);
      expect(dead[0]?.outcome?.resourceType).toBe('OperationOutcome');
      expect(dead[0]?.outcome?.issue?.[0]?.severity).toBe('error');
      expect(await adapter.findByIdentifier('Patient', { system: SYS, value: 'bad' })).toHaveLength(0);
      expect(await adapter.findByIdentifier('Patient', { system: SYS, value: 'good-2' })).toHaveLength(1);
    });
  });
});

describe.skipIf(!mariadb.available)('MySQL outbox durability', () => {
  it('a new outbox instance on the same table sees the pending writes', async () => {
    const first = await mysqlOutbox();
    const item = await first.enqueue(upsert('durable'));
    const second = new MySqlOutbox({ pool: pool as Pool, table: tables[tables.length - 1] as string });
    const claimed = await second.claimDue(Date.now() + 1, 10, 1_000);
    expect(claimed.map((i) => i.id)).toEqual([item.id]);
    expect(claimed[0]?.write).toEqual(upsert('durable'));
  });

  it('purges delivered rows only', async () => {
    let now = 1_000;
    const outbox = await mysqlOutbox({ now: () => now });
    const a = await outbox.enqueue(upsert('a'), { key: 'a' });
    await outbox.enqueue(upsert('b'), { key: 'b' });
    await outbox.markDelivered(a.id);
    now = 5_000;
    expect(await outbox.purgeDelivered(2_000)).toBe(1);
    expect(await outbox.stats()).toEqual({ pending: 1, delivered: 0, dead: 0, oldestPendingAt: 1_000 });
  });
});

describe('OutboxProcessor background loop', () => {
  it('delivers writes enqueued while it runs, and stops', async () => {
    const { url, close } = await createEmbeddedFhirServer().listen(await freePort());
    try {
      const outbox = new MemoryOutbox();
      const processor = new OutboxProcessor({ outbox, adapter: new FhirAdapter({ baseUrl: url, retry: false }) });
      processor.start(10);
      processor.start(10); // idempotent
      await outbox.enqueue(upsert('bg-1'));
      await outbox.enqueue(upsert('bg-2'));
      for (let i = 0; i < 500 && (await outbox.stats()).delivered < 2; i++) await new Promise((r) => setTimeout(r, 10));
      await processor.stop();
      expect(await outbox.stats()).toEqual({ pending: 0, delivered: 2, dead: 0 });
      await outbox.enqueue(upsert('bg-3'));
      await new Promise((r) => setTimeout(r, 50));
      expect((await outbox.stats()).pending).toBe(1);
    } finally {
      await close();
    }
  });

  it('starts the next round at once after a full batch, so a backlog does not wait an interval per batch', async () => {
    const outbox = new MemoryOutbox();
    for (let i = 0; i < 25; i++) await outbox.enqueue(upsert(`backlog-${i}`), { key: `backlog-${i}` });
    const adapter = { upsert: async () => ({}) } as unknown as FhirAdapter;
    const processor = new OutboxProcessor({ outbox, adapter, batchSize: 10 });
    processor.start(60_000);
    try {
      // with a round per interval, only the first batch of 10 would be delivered within the minute
      await expect.poll(async () => (await outbox.stats()).delivered).toBe(25);
    } finally {
      await processor.stop();
    }
  });
});

describe('OutboxProcessor failure classes', () => {
  it('dead-letters rejections and retries transient failures', async () => {
    const { isRejection } = await import('./processor.js');
    const { fhirErrorFor } = await import('../adapter/errors.js');
    const e = (status: number, diagnostics = 'x') =>
      fhirErrorFor({
        method: 'PUT',
        url: 'http://x/fhir/Patient',
        status,
        outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing', diagnostics }] },
      });
    for (const s of [400, 404, 405, 410, 413, 415, 422]) expect([s, isRejection(e(s))]).toEqual([s, true]);
    expect(isRejection(e(412, 'matched 2 resources'))).toBe(true);
    for (const s of [401, 403, 408, 409, 429, 500, 502, 503]) expect([s, isRejection(e(s))]).toEqual([s, false]);
    expect(isRejection(e(412, 'version 3 is not current'))).toBe(false);
    expect(isRejection(new Error('socket hang up'))).toBe(false);
  });
});

describe('OutboxProcessor merging batch writes', () => {
  const batch = (...ids: string[]): FhirWrite => ({
    kind: 'batch',
    bundle: {
      resourceType: 'Bundle',
      type: 'batch',
      entry: ids.map((id) => ({
        resource: { resourceType: 'Basic', id, code: { text: id } },
        request: { method: 'PUT', url: `Basic/${id}` },
      })),
    },
  });
  /** An adapter that records the entries of each batch request, failing those `fail` picks. */
  function recordingAdapter(fail: (ids: string[]) => Error | undefined = () => undefined) {
    const requests: string[][] = [];
    const adapter = {
      async batch(bundle: { entry?: Array<{ resource?: { id?: string } }> }) {
        const ids = (bundle.entry ?? []).map((e) => e.resource?.id ?? '?');
        requests.push(ids);
        const error = fail(ids);
        if (error) throw error;
        return { resourceType: 'Bundle', type: 'batch-response' };
      },
      // What the processor sends for the memory outbox's writes: the entries as the outbox stored them.
      async batchText(parts: BatchEntriesText[]) {
        return this.batch(JSON.parse(`{"entry":[${parts.map((part) => part.json).join(',')}]}`) as Bundle);
      },
      async upsert() {
        requests.push(['upsert']);
        return {};
      },
    };
    return { requests, adapter: adapter as unknown as FhirAdapter };
  }

  it('sends first-attempt batch writes as one Bundle, up to the entry limit, never two writes of one URL', async () => {
    const outbox = new MemoryOutbox();
    for (const w of [batch('a1', 'a2'), batch('b1', 'b2'), upsert('alone'), batch('c1', 'a1'), batch('d1', 'd2')])
      await outbox.enqueue(w, { key: randomUUID() });
    const { requests, adapter } = recordingAdapter();
    const processor = new OutboxProcessor({ outbox, adapter, maxMergedEntries: 4, concurrency: 1 });
    expect(await processor.drainOnce()).toEqual({ claimed: 5, delivered: 5, failed: 0, dead: 0 });
    // a+b fill the limit; c writes a1 again, so it cannot join a request that has a1; d joins c.
    expect(requests).toEqual([['a1', 'a2', 'b1', 'b2'], ['upsert'], ['c1', 'a1', 'd1', 'd2']]);
    expect(await outbox.stats()).toEqual({ pending: 0, delivered: 5, dead: 0, oldestPendingAt: undefined });
  });

  it('when the merged request fails, sends each write alone: each gets its own outcome, and retries go alone', async () => {
    let now = 0;
    const outbox = new MemoryOutbox({ now: () => now });
    for (const w of [batch('ok1'), batch('bad'), batch('down')]) await outbox.enqueue(w, { key: randomUUID() });
    const { fhirErrorFor } = await import('../adapter/errors.js');
    const { requests, adapter } = recordingAdapter((ids) =>
      ids.includes('bad')
        ? fhirErrorFor({ method: 'POST', url: 'http://x/fhir', status: 422 })
        : ids.includes('down')
          ? fhirErrorFor({ method: 'POST', url: 'http://x/fhir', status: 503 })
          : undefined,
    );
    const processor = new OutboxProcessor({
      outbox,
      adapter,
      concurrency: 1,
      clock: { now: () => now, sleep: async () => {} },
      random: () => 0,
    });
    expect(await processor.drainOnce()).toEqual({ claimed: 3, delivered: 1, failed: 1, dead: 1 });
    expect(requests).toEqual([['ok1', 'bad', 'down'], ['ok1'], ['bad'], ['down']]);
    expect((await outbox.deadLetters()).map((d) => d.write)).toEqual([batch('bad')]);
    // The failed write is retried on its own, even beside a new first-attempt write.
    await outbox.enqueue(batch('new'), { key: randomUUID() });
    now = 120_000;
    requests.length = 0;
    expect(await processor.drainOnce()).toMatchObject({ claimed: 2, failed: 1, delivered: 1 });
    expect(requests.sort()).toEqual([['down'], ['new']]);
  });

  it.skipIf(!hapi.available)(
    'delivers merged Bundles of up to 500 entries that HAPI FHIR stores entry by entry',
    async () => {
      const run = randomUUID().slice(0, 8);
      const outbox = new MemoryOutbox();
      const ids = Array.from({ length: 56 }, (_, w) => Array.from({ length: 9 }, (_, e) => `merge-${run}-${w}-${e}`));
      for (const group of ids) await outbox.enqueue(batch(...group), { key: randomUUID() });
      const adapter = new FhirAdapter({ baseUrl: hapi.url, retry: false });
      const posts: number[] = [];
      const counting = Object.assign(Object.create(adapter) as FhirAdapter, {
        batchText: (...[parts, opts]: Parameters<FhirAdapter['batchText']>) => {
          posts.push(parts.reduce((n, part) => n + part.requests.length, 0));
          expect(opts).toEqual({ returnMinimal: true });
          return adapter.batchText(parts, opts);
        },
      });
      const processor = new OutboxProcessor({ outbox, adapter: counting, batchSize: 100 });
      expect(await processor.drainOnce()).toEqual({ claimed: 56, delivered: 56, failed: 0, dead: 0 });
      expect(posts).toEqual([495, 9]);
      for (const id of [ids[0]![0]!, ids[54]![8]!, ids[55]![8]!]) {
        const response = await fetch(`${hapi.url}/Basic/${id}`, { headers: { accept: 'application/fhir+json' } });
        expect([id, response.status]).toEqual([id, 200]);
      }
    },
  );
});
