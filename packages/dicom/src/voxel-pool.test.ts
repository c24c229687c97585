import { describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { VoxelBufferPool } from './voxel-pool.js';
import type { Volume } from './volume.js';

describe('VoxelBufferPool', () => {
  it('hands back the smallest kept buffer that fits, else new memory', () => {
    const pool = new VoxelBufferPool();
    const a = pool.acquire(100);
    const b = pool.acquire(300);
    const c = pool.acquire(1000);
    expect([a.byteLength, b.byteLength, c.byteLength]).toEqual([100, 300, 1000]);
    pool.release(c);
    pool.release(new Uint8Array(a)); // a typed array gives its buffer back
    pool.release(b);
    expect(pool.retainedBytes).toBe(1400);
    expect(pool.acquire(150)).toBe(b);
    expect(pool.acquire(50)).toBe(a);
    expect(pool.acquire(900)).toBe(c);
    expect(pool.retainedBytes).toBe(0);
    const fresh = pool.acquire(10);
    expect([a, b, c]).not.toContain(fresh);
  });

  it("takes a volume's whole buffer, ignores a second release, and keeps no more than the limit", () => {
    const pool = new VoxelBufferPool({ maxRetainedBytes: 1000 });
    const buffer = new ArrayBuffer(800);
    const volume: Volume = {
      data: new Uint16Array(buffer, 0, 100), // a view on the front of a larger buffer
      dims: [10, 10, 1],
      spacing: [1, 1, 1],
      origin: [0, 0, 0],
      direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    };
    pool.release(volume);
    pool.release(volume);
    expect(pool.retainedBytes).toBe(800);
    pool.release(new ArrayBuffer(300)); // over the limit: left to the garbage collector
    expect(pool.retainedBytes).toBe(800);
    expect(pool.acquire(500)).toBe(buffer);
  });

  it('acquireLargest: the largest kept buffer when it is big enough, else new memory of the minimum', () => {
    const pool = new VoxelBufferPool();
    const [small, large] = [new ArrayBuffer(100), new ArrayBuffer(5000)];
    pool.release(small);
    pool.release(large);
    expect(pool.acquireLargest(200)).toBe(large);
    const fresh = pool.acquireLargest(200);
    expect(fresh).not.toBe(small);
    expect(fresh.byteLength).toBe(200);
    expect(pool.acquireLargest(50)).toBe(small);
  });

  it('refuses a bad limit', () => {
    expect(() => new VoxelBufferPool({ maxRetainedBytes: -1 })).toThrow(ValidationError);
    expect(() => new VoxelBufferPool({ maxRetainedBytes: Number.NaN })).toThrow(/maxRetainedBytes/);
  });
});
