/**
 * Bounded parallelism: run at most `limit` tasks at a time, stop starting new ones on the first failure or
 * on abort.
 * @packageDocumentation
 */

/**
 * Maps over `items` with at most `limit` calls in flight. Results keep the input order.
 * @param items - inputs
 * @param limit - maximum concurrent calls (≥ 1)
 * @param fn - the task
 * @param signal - cancels: no new task starts and the returned promise rejects with the signal's reason
 * @returns the results
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      if (signal?.aborted) throw signal.reason;
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const n = Math.max(1, Math.min(Math.floor(limit), items.length));
  const settled = await Promise.allSettled(Array.from({ length: n }, worker));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  if (signal?.aborted) throw signal.reason;
  return results;
}
