import { describe, expect, it } from 'vitest';
import { AuditTrail, createMemoryAuditStore, newAuditRecord, type AuditRecord, type AuditStore } from './audit.js';

const record = (n: number): AuditRecord =>
  newAuditRecord({
    userId: `user-${n}`,
    userName: 'Dr Test',
    roles: ['physician'],
    action: 'read',
    resource: 'Patient/x',
    outcome: 'success',
    requestId: `req-${n}`,
  });

/** A memory store whose appends wait until released, counting how many run at once. */
function slowStore(concurrentBatches?: number) {
  const inner = createMemoryAuditStore();
  const gates: Array<() => void> = [];
  let running = 0;
  let most = 0;
  const store: AuditStore = {
    ...(concurrentBatches === undefined ? {} : { concurrentBatches }),
    async appendBatch(records, alsoCommit) {
      running++;
      most = Math.max(most, running);
      await new Promise<void>((release) => gates.push(release));
      running--;
      await inner.appendBatch(records, alsoCommit);
    },
    list: (query) => inner.list(query),
    close: () => inner.close(),
  };
  return { store, gates, inner, most: () => most };
}

const tick = () => new Promise((ok) => setImmediate(ok));

describe('AuditTrail', () => {
  it("appends the next group while the previous one commits when the store allows it (MySQL's concurrentBatches)", async () => {
    const slow = slowStore(2);
    const trail = new AuditTrail({ store: slow.store });
    const first = trail.append(record(1));
    await tick();
    const second = trail.append(record(2));
    await tick();
    expect(slow.gates).toHaveLength(2);
    slow.gates.forEach((release) => release());
    await Promise.all([first, second]);
    expect(slow.most()).toBe(2);
    expect(slow.inner.records.map((r) => r.userId).sort()).toEqual(['user-1', 'user-2']);
    await trail.close();
  });

  it('appends one group at a time to a store that does not say otherwise (a file)', async () => {
    const slow = slowStore();
    const trail = new AuditTrail({ store: slow.store });
    const first = trail.append(record(1));
    await tick();
    const second = trail.append(record(2));
    await tick();
    await tick();
    expect(slow.gates).toHaveLength(1);
    slow.gates[0]!();
    await first;
    await tick();
    slow.gates[1]!();
    await second;
    expect(slow.most()).toBe(1);
    expect(slow.inner.records.map((r) => r.userId)).toEqual(['user-1', 'user-2']);
    await trail.close();
  });
});
