import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

/** A flush that waits until released, recording each batch. */
function gatedFlush() {
  const batches: number[][] = [];
  let release: (() => void) | undefined;
  let fail: Error | undefined;
  return {
    batches,
    failNext(error: Error) {
      fail = error;
    },
    release() {
      release?.();
    },
    flush: async (items: number[]) => {
      batches.push(items);
      await new Promise<void>((ok) => (release = ok));
      if (fail) {
        const error = fail;
        fail = undefined;
        throw error;
      }
    },
  };
}

const tick = () => new Promise((ok) => setImmediate(ok));

describe('GroupCommit', () => {
  it('writes the items added while a flush runs as one batch, and resolves each only when its batch is done', async () => {
    const gate = gatedFlush();
    const commits = new GroupCommit(gate.flush);
    const done: number[] = [];
    const first = commits.add(1).then(() => done.push(1));
    await tick();
    expect(gate.batches).toEqual([[1]]);
    const rest = [2, 3, 4].map((n) => commits.add(n).then(() => done.push(n)));
    expect(commits.pending).toBe(3);
    await tick();
    expect(done).toEqual([]); // nothing answers before its batch is durable
    gate.release();
    await first;
    await tick();
    expect(gate.batches).toEqual([[1], [2, 3, 4]]);
    expect(done).toEqual([1]);
    gate.release();
    await Promise.all(rest);
    expect(done).toEqual([1, 2, 3, 4]);
    await commits.settled();
  });

  it('adds made in one turn of the event loop go together, even the first', async () => {
    const batches: number[][] = [];
    const commits = new GroupCommit<number>(async (items) => void batches.push(items));
    await Promise.all([1, 2, 3].map((n) => commits.add(n)));
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('rejects every item of a failed batch, and goes on with the next batch', async () => {
    const gate = gatedFlush();
    const commits = new GroupCommit(gate.flush);
    const first = commits.add(1);
    await tick();
    const second = [commits.add(2), commits.add(3)];
    gate.failNext(new Error('disk full'));
    gate.release();
    await expect(first).rejects.toThrow('disk full');
    await tick();
    gate.failNext(new Error('still full'));
    gate.release();
    await expect(Promise.all(second)).rejects.toThrow('still full');
    await expect(second[1]).rejects.toThrow('still full');
    const third = commits.add(4);
    await tick();
    gate.release();
    await expect(third).resolves.toBeUndefined();
    expect(gate.batches).toEqual([[1], [2, 3], [4]]);
  });

  it('by default starts no second flush before the first is durable, however long it takes', async () => {
    const gate = gatedFlush();
    const commits = new GroupCommit(gate.flush);
    const first = commits.add(1);
    await tick();
    const second = commits.add(2);
    for (let i = 0; i < 5; i++) await tick();
    expect(gate.batches).toEqual([[1]]);
    gate.release();
    await first;
    await tick();
    expect(gate.batches).toEqual([[1], [2]]);
    gate.release();
    await second;
  });

  it('caps a batch at maxBatch items', async () => {
    const batches: number[][] = [];
    const commits = new GroupCommit<number>(async (items) => void batches.push(items), { maxBatch: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((n) => commits.add(n)));
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });
});

/** A flush whose batches each wait until released (or failed) one by one, in any order. */
function concurrentFlush() {
  const batches: Array<{ items: number[]; release(): void; fail(error: Error): void }> = [];
  let running = 0;
  let most = 0;
  return {
    batches,
    get most() {
      return most;
    },
    flush: async (items: number[]) => {
      running++;
      most = Math.max(most, running);
      try {
        await new Promise<void>((release, fail) => batches.push({ items, release, fail }));
      } finally {
        running--;
      }
    },
  };
}

describe('GroupCommit with maxInFlight', () => {
  it('flushes the next batch while the previous one is still committing, up to maxInFlight at once', async () => {
    const gate = concurrentFlush();
    const commits = new GroupCommit(gate.flush, { maxInFlight: 2 });
    const done: number[] = [];
    const track = (n: number) => commits.add(n).then(() => done.push(n));
    const adds = [track(1)];
    await tick();
    adds.push(track(2), track(3));
    await tick();
    // The second batch did not wait for the first to be durable.
    expect(gate.batches.map((b) => b.items)).toEqual([[1], [2, 3]]);
    adds.push(track(4), track(5));
    await tick();
    await tick();
    // Two in flight: the third batch waits, filling meanwhile.
    expect(gate.batches).toHaveLength(2);
    expect(commits.pending).toBe(2);
    // Each batch answers when it is durable, even out of order.
    gate.batches[1]!.release();
    await tick();
    expect(done).toEqual([2, 3]);
    expect(gate.batches.map((b) => b.items)).toEqual([[1], [2, 3], [4, 5]]);
    gate.batches[0]!.release();
    gate.batches[2]!.release();
    await Promise.all(adds);
    expect(done).toEqual([2, 3, 1, 4, 5]);
    expect(gate.most).toBe(2);
    await commits.settled();
  });

  it('rejects only the items of the batch that failed', async () => {
    const gate = concurrentFlush();
    const commits = new GroupCommit(gate.flush, { maxInFlight: 3 });
    const first = commits.add(1);
    await tick();
    const second = commits.add(2);
    await tick();
    gate.batches[0]!.fail(new Error('deadlock'));
    gate.batches[1]!.release();
    await expect(first).rejects.toThrow('deadlock');
    await expect(second).resolves.toBeUndefined();
  });

  it('settled() waits for every batch in flight', async () => {
    const gate = concurrentFlush();
    const commits = new GroupCommit(gate.flush, { maxInFlight: 2 });
    const adds = [commits.add(1)];
    await tick();
    adds.push(commits.add(2));
    await tick();
    let settled = false;
    const waiting = commits.settled().then(() => (settled = true));
    gate.batches[0]!.release();
    await adds[0];
    await tick();
    expect(settled).toBe(false);
    gate.batches[1]!.release();
    await waiting;
    expect(settled).toBe(true);
    await Promise.all(adds);
  });
});
