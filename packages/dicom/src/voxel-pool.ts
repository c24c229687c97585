/**
 * Reuse of voxel memory between volumes.
 *
 * A 240×240×155 study is 72 MB of voxels; a worker that downloads study after study and lets each volume go to
 * the garbage collector makes the kernel find (and zero) that much fresh memory every time. On virtual machines
 * that hand freed pages back to their host, touching fresh pages costs more than receiving the bytes (measured
 * here: ~90 ms of page faults for 72 MB against ~100 ms for the whole download by curl). A pool keeps the
 * buffers of volumes the caller is done with and hands them out again.
 * @packageDocumentation
 */
import { ValidationError } from '@cdss/core';
import type { Volume, VoxelArray } from './volume.js';

/** Options of {@link VoxelBufferPool}. */
export interface VoxelBufferPoolOptions {
  /** Most bytes kept for reuse; a buffer given back beyond it is left to the garbage collector. Default 512 MiB. */
  maxRetainedBytes?: number;
}

/**
 * Keeps `ArrayBuffer`s of released volumes and hands them out for new ones. Not thread-safe across workers (each
 * thread has its own); a buffer is either in the pool or in the caller's hands, never both.
 * @example
 * ```ts
 * const pool = new VoxelBufferPool();
 * for (const job of jobs) {
 *   const input = await retrieveStudyInput(dicomweb, job.studyUid, { pool });
 *   await segment(input);
 *   for (const channel of Object.values(input.channels)) pool.release(channel.volume);
 * }
 * ```
 */
export class VoxelBufferPool {
  readonly #maxRetainedBytes: number;
  readonly #free: ArrayBuffer[] = [];
  #retainedBytes = 0;

  /**
   * @param options - retention limit
   * @throws {@link ValidationError} for a negative or non-finite limit
   */
  constructor(options: VoxelBufferPoolOptions = {}) {
    const max = options.maxRetainedBytes ?? 512 * 1024 * 1024;
    if (!(max >= 0 && Number.isFinite(max))) {
      throw new ValidationError('Invalid VoxelBufferPool options', [
        { path: 'maxRetainedBytes', message: 'expected a finite number ≥ 0', code: 'invalid_value' },
      ]);
    }
    this.#maxRetainedBytes = max;
  }

  /** Bytes kept for reuse now. */
  get retainedBytes(): number {
    return this.#retainedBytes;
  }

  /**
   * A buffer of at least `byteLength` bytes (contents undefined): the smallest kept one that fits, else a new one.
   * @param byteLength - bytes needed
   * @returns a buffer, now the caller's
   */
  acquire(byteLength: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const size = (this.#free[i] as ArrayBuffer).byteLength;
      if (size >= byteLength && (best < 0 || size < (this.#free[best] as ArrayBuffer).byteLength)) best = i;
    }
    if (best >= 0) {
      const [buffer] = this.#free.splice(best, 1) as [ArrayBuffer];
      this.#retainedBytes -= buffer.byteLength;
      return buffer;
    }
    // Not zero-filled: every byte handed out is written before it is read.
    return Buffer.allocUnsafeSlow(byteLength).buffer as ArrayBuffer;
  }

  /**
   * The largest kept buffer if it has at least `minBytes`, else a new one of `minBytes`: for a buffer that is
   * filled before its final size is known (a volume's staging memory).
   * @param minBytes - bytes needed at least
   * @returns a buffer, now the caller's
   */
  acquireLargest(minBytes: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      if (best < 0 || (this.#free[i] as ArrayBuffer).byteLength > (this.#free[best] as ArrayBuffer).byteLength)
        best = i;
    }
    const largest = this.#free[best];
    return largest && largest.byteLength >= minBytes ? this.acquire(largest.byteLength) : this.acquire(minBytes);
  }

  /**
   * Gives memory back: a volume's voxels (the whole buffer under them), a typed array's buffer, or a buffer.
   * Neither the volume nor any view of that buffer may be used afterwards. Releasing a buffer twice is ignored.
   * @param target - what to give back
   */
  release(target: Volume | VoxelArray | Uint8Array | ArrayBuffer): void {
    const buffer =
      target instanceof ArrayBuffer
        ? target
        : 'data' in target && !ArrayBuffer.isView(target)
          ? target.data.buffer
          : target.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0 || this.#free.includes(buffer)) return;
    if (this.#retainedBytes + buffer.byteLength > this.#maxRetainedBytes) return;
    this.#free.push(buffer);
    this.#retainedBytes += buffer.byteLength;
  }
}
