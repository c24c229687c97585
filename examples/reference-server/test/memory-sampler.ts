/**
 * Memory sampling for the soak, loaded into a process with `--import` (see `startDeployment({ memorySamples })`):
 * when `CDSS_MEMORY_SAMPLE_FILE` is set, the main thread appends one JSON line every `CDSS_MEMORY_SAMPLE_MS`
 * (default 5000) with `process.memoryUsage()` and V8's heap statistics, and one line marked `afterMajorGc` right
 * after each full (mark-compact) garbage collection: the heap used then is what is still alive, without forcing a GC
 * that would change the process under test. With `CDSS_HEAP_SNAPSHOT_DIR` set, SIGUSR2 writes a heap snapshot there.
 * Comparing the JavaScript heap with the RSS
 * over a run tells a leak of JavaScript objects (heap used keeps rising) from heap warm-up, native memory or the
 * allocator keeping freed pages (RSS rises while the heap stays flat).
 */
import { appendFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

/** One sample, as written (bytes; `t` in epoch milliseconds). */
export interface MemorySample {
  t: number;
  pid: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  malloced: number;
  nativeContexts: number;
  /**
   * What V8 holds per heap space (`space_size`, bytes), by space name without `_space` (new, old, code,
   * large_object, new_large_object, trusted, …): which part of the heap grows.
   */
  spaces?: Record<string, number>;
  /** Taken right after a full garbage collection. */
  afterMajorGc?: true;
}

const file = process.env['CDSS_MEMORY_SAMPLE_FILE'];
if (file && isMainThread) {
  const sample = (afterMajorGc = false): void => {
    const memory = process.memoryUsage();
    const heap = getHeapStatistics();
    const line: MemorySample = {
      t: Date.now(),
      pid: process.pid,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      malloced: heap.malloced_memory,
      nativeContexts: heap.number_of_native_contexts,
      spaces: Object.fromEntries(
        getHeapSpaceStatistics().map((space) => [space.space_name.replace(/_space$/, ''), space.space_size]),
      ),
      ...(afterMajorGc ? { afterMajorGc: true as const } : {}),
    };
    try {
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch {
      // sampling must never disturb the process it watches
    }
  };
  sample();
  setInterval(sample, Number(process.env['CDSS_MEMORY_SAMPLE_MS'] ?? 5000)).unref();
  const observer = new PerformanceObserver((list) => {
    const major = list
      .getEntries()
      .some((entry) => (entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
    if (major) sample(true);
  });
  observer.observe({ entryTypes: ['gc'] });
}

// `--heapsnapshot-signal` did not answer here (Node 20.20): SIGUSR2 writes a heap snapshot where asked instead.
const snapshots = process.env['CDSS_HEAP_SNAPSHOT_DIR'];
if (snapshots && isMainThread) {
  process.on('SIGUSR2', () => {
    const path = writeHeapSnapshot(join(snapshots, `${process.pid}-${Date.now()}.heapsnapshot`));
    appendFileSync(join(snapshots, 'written'), `${path}\n`);
  });
}
