import { describe, expect, it } from 'vitest';
import { autoWindow, busiestSlice, renderSlice, type LabelVolume, type ScalarVolume } from './volume';

function ramp(): ScalarVolume {
  const dims = [4, 3, 2] as const;
  const data = new Float32Array(24);
  for (let i = 0; i < data.length; i++) data[i] = i;
  return { dims, spacing: [1, 1, 2], data };
}

describe('renderSlice', () => {
  it('maps the window to black..white and addresses voxels as i + x*j + x*y*k', () => {
    const volume = ramp();
    const out = new Uint8ClampedArray(4 * 12);
    renderSlice(volume, 1, { center: 18, width: 12 }, out);
    // slice 1 holds voxels 12..23; 12 is the window's low end (black), 23 is near white.
    expect(out[0]).toBe(0);
    expect(out[4 * 11]).toBeGreaterThan(230);
    expect(out[3]).toBe(255);
    renderSlice(volume, 0, { center: 18, width: 12 }, out);
    expect(out[4 * 11]).toBe(0); // voxel 11 is below the window
  });

  it('blends each region in its colour with the opacity, and hides regions that are off', () => {
    const volume = ramp();
    const labels: LabelVolume = { dims: volume.dims, spacing: volume.spacing, data: new Uint8Array(24) };
    labels.data[12] = 1; // necrotic core (red)
    labels.data[13] = 2; // oedema (green)
    labels.data[14] = 4; // enhancing (yellow)
    const out = new Uint8ClampedArray(4 * 12);
    const stats = renderSlice(volume, 1, { center: 1000, width: 10 }, out, {
      labels,
      opacity: 1,
      visible: new Set(['necrotic', 'oedema', 'enhancing']),
    });
    expect(stats.overlayPixels).toBe(3);
    expect([out[0], out[1], out[2]]).toEqual([230, 60, 60]);
    expect([out[4], out[5], out[6]]).toEqual([60, 200, 90]);
    expect([out[8], out[9], out[10]]).toEqual([250, 210, 40]);
    const half = renderSlice(volume, 1, { center: 1000, width: 10 }, out, {
      labels,
      opacity: 0.5,
      visible: new Set(['oedema']),
    });
    expect(half.overlayPixels).toBe(1);
    expect([out[0], out[1], out[2]]).toEqual([0, 0, 0]);
    expect([out[4], out[5], out[6]]).toEqual([30, 100, 45]);
  });

  it('refuses slices out of range and mismatched segmentations', () => {
    const volume = ramp();
    const out = new Uint8ClampedArray(4 * 12);
    expect(() => renderSlice(volume, 2, { center: 0, width: 1 }, out)).toThrow(RangeError);
    const labels: LabelVolume = { dims: [4, 3, 1], spacing: [1, 1, 1], data: new Uint8Array(12) };
    expect(() =>
      renderSlice(volume, 0, { center: 0, width: 1 }, out, { labels, opacity: 1, visible: new Set() }),
    ).toThrow(/dimensions/);
  });
});

describe('autoWindow', () => {
  it('spans the non-zero intensities', () => {
    const data = new Float32Array(1000);
    for (let i = 500; i < 1000; i++) data[i] = 100 + (i - 500);
    const w = autoWindow(data);
    expect(w.center - w.width / 2).toBeGreaterThanOrEqual(100);
    expect(w.center + w.width / 2).toBeLessThanOrEqual(600);
    expect(w.width).toBeGreaterThan(400);
  });
});

describe('busiestSlice', () => {
  it('finds the slice with the most labels', () => {
    const labels: LabelVolume = { dims: [2, 2, 3], spacing: [1, 1, 1], data: new Uint8Array(12) };
    labels.data[8] = 2;
    labels.data[9] = 2;
    labels.data[4] = 1;
    expect(busiestSlice(labels)).toBe(2);
  });
});
