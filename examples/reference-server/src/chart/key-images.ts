/**
 * Key images for the report: the axial slice of the T1 post-contrast series where the segmented tumour is largest,
 * as grey levels and with the BraTS labels overlaid (PNG, via pngjs).
 */
import { PNG } from 'pngjs';
import type { VoxelGrid } from '../domain/ports.js';

/** Overlay colours of the BraTS labels (1 necrotic core, 2 oedema, 3 or 4 enhancing tumour). */
export const LABEL_COLOURS: Readonly<Record<number, readonly [number, number, number]>> = {
  1: [255, 214, 0],
  2: [0, 200, 83],
  3: [229, 57, 53],
  4: [229, 57, 53],
};

/** A rendered key image. */
export interface KeyImage {
  png: Buffer;
  /** The slice index (0-based) and how many there are. */
  slice: number;
  slices: number;
  overlay: boolean;
}

/** The axial slice with the most labelled voxels (the middle one when there are none). */
export function largestTumourSlice(labels: VoxelGrid<Uint8Array>): number {
  const [x, y, z] = labels.dims;
  let best = Math.floor(z / 2);
  let bestCount = 0;
  for (let k = 0; k < z; k++) {
    let count = 0;
    const offset = k * x * y;
    for (let i = 0; i < x * y; i++) if (labels.data[offset + i] !== 0) count++;
    if (count > bestCount) {
      bestCount = count;
      best = k;
    }
  }
  return best;
}

/**
 * Renders one axial slice, scaled up to about `targetPx` wide (nearest neighbour, keeping the pixel aspect), with the
 * grey levels windowed to the slice's 1st–99th percentile.
 * @param image - the series volume
 * @param labels - the labels on the same grid, or undefined for no overlay
 * @param slice - the axial index
 * @param targetPx - the wanted width in pixels
 */
export function renderSlice(
  image: VoxelGrid<Float32Array>,
  labels: VoxelGrid<Uint8Array> | undefined,
  slice: number,
  targetPx = 320,
): Buffer {
  const [x, y] = image.dims;
  const offset = slice * x * y;
  const values = Array.from(image.data.subarray(offset, offset + x * y)).sort((a, b) => a - b);
  const low = values[Math.floor(values.length * 0.01)] ?? 0;
  const high = values[Math.floor(values.length * 0.99)] ?? 1;
  const span = high - low || 1;
  const scaleX = Math.max(1, Math.round(targetPx / x));
  const scaleY = Math.max(1, Math.round((scaleX * image.spacing[1]) / image.spacing[0]));
  const png = new PNG({ width: x * scaleX, height: y * scaleY, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const rgb = Buffer.alloc(x * scaleX * y * scaleY * 3);
  for (let j = 0; j < y; j++) {
    for (let i = 0; i < x; i++) {
      const v = image.data[offset + i + x * j] ?? 0;
      const grey = Math.round(Math.min(1, Math.max(0, (v - low) / span)) * 255);
      let pixel: readonly [number, number, number] = [grey, grey, grey];
      const label = labels?.data[offset + i + x * j] ?? 0;
      const colour = LABEL_COLOURS[label];
      if (colour) pixel = [0, 1, 2].map((c) => Math.round(0.55 * grey + 0.45 * colour[c]!)) as [number, number, number];
      for (let dy = 0; dy < scaleY; dy++) {
        for (let dx = 0; dx < scaleX; dx++) {
          const at = ((j * scaleY + dy) * x * scaleX + i * scaleX + dx) * 3;
          rgb[at] = pixel[0];
          rgb[at + 1] = pixel[1];
          rgb[at + 2] = pixel[2];
        }
      }
    }
  }
  png.data = rgb;
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/**
 * The two key images of a result: the slice without and with the overlay.
 * @param image - the T1 post-contrast volume
 * @param labels - the segmentation on its grid
 */
export function keyImages(image: VoxelGrid<Float32Array>, labels: VoxelGrid<Uint8Array>): KeyImage[] {
  if (image.dims.join() !== labels.dims.join())
    throw new Error(`the segmentation grid ${labels.dims.join('×')} is not the image grid ${image.dims.join('×')}`);
  const slice = largestTumourSlice(labels);
  const slices = image.dims[2];
  return [
    { png: renderSlice(image, undefined, slice), slice, slices, overlay: false },
    { png: renderSlice(image, labels, slice), slice, slices, overlay: true },
  ];
}
