/**
 * Serialises async work per key within one process: work on the same key runs one at a time, in
 * arrival order; different keys run in parallel. Used so that parallel syncs of one patient never
 * race HAPI's conditional create (hapifhir/hapi-fhir#3141).
 * @packageDocumentation
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Number of keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }

  /**
   * Runs `fn` once every earlier holder of any of `keys` is done. Keys are locked in sorted order, so
   * two callers with overlapping key sets cannot deadlock.
   * @param keys - the keys to hold (duplicates are ignored)
   * @param fn - the work
   * @returns what `fn` returns
   */
  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    if (sorted.length === 0) return fn();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waits: Promise<void>[] = [];
    for (const key of sorted) {
      const prev = this.tails.get(key);
      if (prev) waits.push(prev);
      this.tails.set(key, mine);
    }
    try {
      await Promise.all(waits);
      return await fn();
    } finally {
      release();
      for (const key of sorted) if (this.tails.get(key) === mine) this.tails.delete(key);
    }
  }
}
