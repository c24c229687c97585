import { describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import { MemoryOutbox } from './memory-outbox.js';
import { MinHeap } from './min-heap.js';
import type { FhirWrite } from './types.js';

const write = (value: string): FhirWrite => ({
  kind: 'upsert',
  resource: { resourceType: 'Patient', identifier: [{ system: 'urn:s', value }] } as Patient,
  identifier: { system: 'urn:s', value },
});

describe('MemoryOutbox at a backlog of 100,000 pending writes', () => {
  it('delivers each once, in enqueue order per key, through leases and retries', async () => {
    let now = 0;
    const outbox = new MemoryOutbox({ now: () => now });
    const keys = 1_000;
    const total = 100_000;
    for (let i = 0; i < total; i++) await outbox.enqueue(write(String(i)), { key: `k${i % keys}` });
    expect((await outbox.stats()).pending).toBe(total);

    const delivered = new Map<string, number[]>();
    let rounds = 0;
    let leaseExpiries = 0;
    for (;;) {
      now += 10;
      const items = await outbox.claimDue(now, 500, 1_000);
      if (items.length === 0) {
        if ((await outbox.stats()).pending === 0) break;
        now += 1_000; // only leased or backing-off heads remain
        continue;
      }
      rounds++;
      expect(new Set(items.map((i) => i.key)).size).toBe(items.length); // one per key
      for (const [n, item] of items.entries()) {
        const value = Number((item.write as { identifier: { value: string } }).identifier.value);
        if (n % 97 === 0 && item.attempts === 0) {
          await outbox.markFailed(item.id, 'HttpError 503', now + 50);
        } else if (n % 89 === 0 && leaseExpiries < 50 && item.attempts === 0) {
          leaseExpiries++; // never marked: claimed again once its lease ends
        } else {
          await outbox.markDelivered(item.id);
          const list = delivered.get(item.key) ?? [];
          list.push(value);
          delivered.set(item.key, list);
        }
      }
    }
    expect(rounds).toBeGreaterThanOrEqual(total / 500);
    let count = 0;
    for (const [key, values] of delivered) {
      const k = Number(key.slice(1));
      expect(values).toEqual(Array.from({ length: total / keys }, (_, j) => j * keys + k));
      count += values.length;
    }
    expect(count).toBe(total);
    expect(leaseExpiries).toBe(50);
    expect(await outbox.stats()).toEqual({ pending: 0, delivered: total, dead: 0, oldestPendingAt: undefined });
  });

  it('reports the oldest pending write, and dead-letters out of any position', async () => {
    let now = 100;
    const outbox = new MemoryOutbox({ now: () => now++ });
    const a = await outbox.enqueue(write('a'), { key: 'K' });
    const b = await outbox.enqueue(write('b'), { key: 'K' });
    const c = await outbox.enqueue(write('c'), { key: 'K' });
    await outbox.markDead(b.id, 'rejected', undefined, 500); // not the head
    expect((await outbox.stats()).oldestPendingAt).toBe(100);
    await outbox.markDelivered(a.id);
    expect((await outbox.stats()).oldestPendingAt).toBe(102);
    expect((await outbox.claimDue(1_000, 10, 10)).map((i) => i.id)).toEqual([c.id]);
    expect((await outbox.deadLetters()).map((d) => [d.id, d.attempts, d.deadAt])).toEqual([[b.id, 1, 500]]);
  });
});

describe('MemoryOutbox copies', () => {
  it('keeps its own copy of a write: the caller may change theirs, and each claim gets a copy of its own', async () => {
    const outbox = new MemoryOutbox({ now: () => 0 });
    const mine = write('x');
    await outbox.enqueue(mine, { key: 'K' });
    (mine as { identifier: { value: string } }).identifier.value = 'changed';
    const [claimed] = await outbox.claimDue(0, 1, 10);
    expect((claimed!.write as { identifier: { value: string } }).identifier.value).toBe('x');
    // A claimer that changes its copy changes nothing a retry sends.
    (claimed!.write as { identifier: { value: string } }).identifier.value = 'y';
    await outbox.markFailed(claimed!.id, 'down', 0);
    const [again] = await outbox.claimDue(0, 1, 10);
    expect(again!.write).toEqual(write('x'));
    expect(again!.write).not.toBe(claimed!.write);
  });

  it("hands out a batch write's entries as the text it stored, and the same write parsed", async () => {
    const outbox = new MemoryOutbox({ now: () => 0 });
    const entry = ['a', 'b'].map((id) => ({
      resource: { resourceType: 'Basic' as const, id, code: { text: `"quoted" ${id}` } },
      request: { method: 'PUT' as const, url: `Basic/${id}` },
    }));
    const batch: FhirWrite = {
      kind: 'batch',
      bundle: { resourceType: 'Bundle', type: 'batch', meta: { tag: [] }, entry },
    };
    await outbox.enqueue(batch, { key: 'B' });
    await outbox.enqueue({ kind: 'batch', bundle: { resourceType: 'Bundle', type: 'batch', entry: [] } }, { key: 'E' });
    await outbox.enqueue(write('u'), { key: 'U' });
    entry[0]!.request.url = 'changed';
    const [first, empty, upsert] = await outbox.claimDue(0, 3, 10);
    expect(JSON.parse(`[${first!.batchText!.json}]`)).toEqual([
      { ...entry[0], request: { method: 'PUT', url: 'Basic/a' } },
      entry[1],
    ]);
    expect(first!.batchText!.requests).toEqual([
      { method: 'PUT', url: 'Basic/a' },
      { method: 'PUT', url: 'Basic/b' },
    ]);
    expect(first!.write).toEqual({
      ...batch,
      bundle: { ...batch.bundle, entry: JSON.parse(`[${first!.batchText!.json}]`) },
    });
    expect(empty!.batchText).toBeUndefined();
    expect(empty!.write).toEqual({ kind: 'batch', bundle: { resourceType: 'Bundle', type: 'batch', entry: [] } });
    expect(upsert!.batchText).toBeUndefined();
    await outbox.markDead(first!.id, 'rejected', undefined, 0);
    const [dead] = await outbox.deadLetters();
    expect(dead).not.toHaveProperty('batchText');
    expect(dead!.write).toEqual(first!.write);
  });
});

describe('MinHeap', () => {
  it('pops in order whatever the order of pushes', () => {
    const heap = new MinHeap<number>((a, b) => a < b);
    const values = Array.from({ length: 1_000 }, (_, i) => (i * 7919) % 1_000);
    for (const v of values) heap.push(v);
    const out: number[] = [];
    while (heap.size > 0) out.push(heap.pop() as number);
    expect(out).toEqual([...values].sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
  });
});
