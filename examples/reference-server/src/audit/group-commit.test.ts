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

  it('caps a batch at maxBatch items', async () => {
    const batches: number[][] = [];
    const commits = new GroupCommit<number>(async (items) => void batches.push(items), { maxBatch: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((n) => commits.add(n)));
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });
});
