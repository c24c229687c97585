/**
 * Connected components of binary masks, and MONAI's clean-up transforms over them:
 * `KeepLargestConnectedComponent` (`get_largest_connected_component_mask`) and `RemoveSmallObjects`
 * (scikit-image `remove_small_objects`, as MONAI calls it), with scikit-image's connectivity numbers:
 * 1 = faces (6 neighbours in 3-D), 2 = faces and edges (18), 3 = faces, edges and corners (26; MONAI's
 * `connectivity=None`). Masks are C-order `[d0, d1, d2]` (d2 fastest), like the rest of the post-processing.
 * Proven equal to MONAI 1.5 by `__fixtures__/monai-spatial/` (tools/monai-reference/make_spatial_vectors.py).
 * @packageDocumentation
 */
import { checkChannelFirst, requireInput } from './segmentation-errors.js';

/** scikit-image connectivity: 1 (6-neighbourhood), 2 (18) or 3 (26, MONAI's default `None`). */
export type Connectivity = 1 | 2 | 3;

/** A labelling: `labels[v]` is 0 (background) or the 1-based component of voxel v; `sizes[c - 1]` its voxel count. */
export interface Components {
  labels: Int32Array;
  sizes: number[];
}

/** The already-visited neighbour offsets (d0, d1, d2) of a voxel for a connectivity (raster order). */
function backwardOffsets(connectivity: Connectivity): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let a = -1; a <= 0; a++)
    for (let b = -1; b <= 1; b++)
      for (let c = -1; c <= 1; c++) {
        const order = Math.abs(a) + Math.abs(b) + Math.abs(c);
        // only neighbours earlier in raster order
        const earlier = a < 0 || (a === 0 && (b < 0 || (b === 0 && c < 0)));
        if (earlier && order >= 1 && order <= connectivity) out.push([a, b, c]);
      }
  return out;
}

/**
 * Labels the connected components of a mask (two passes with union-find). Components are numbered in raster order
 * of their first voxel.
 * @param mask - non-zero = foreground, C-order `[d0, d1, d2]`
 * @param dims - `[d0, d1, d2]`
 * @param connectivity - 1, 2 or 3 (default 3, full)
 */
export function connectedComponents(
  mask: ArrayLike<number>,
  dims: readonly [number, number, number],
  connectivity: Connectivity = 3,
): Components {
  checkChannelFirst(mask, [1, ...dims], 'connectedComponents mask', 3);
  requireInput([1, 2, 3].includes(connectivity), `connectivity must be 1, 2 or 3, got ${String(connectivity)}`);
  const [n0, n1, n2] = dims;
  const s1 = n2;
  const s0 = n1 * n2;
  const labels = new Int32Array(mask.length);
  const parent: number[] = [0];
  const find = (x: number): number => {
    let r = x;
    while (parent[r] !== r) r = parent[r] as number;
    while (parent[x] !== r) {
      const next = parent[x] as number;
      parent[x] = r;
      x = next;
    }
    return r;
  };
  const offsets = backwardOffsets(connectivity);
  const count = offsets.length;
  // per neighbour: its steps along d0, d1, d2 and its offset in the array
  const da = Int32Array.from(offsets, (o) => o[0]);
  const db = Int32Array.from(offsets, (o) => o[1]);
  const dc = Int32Array.from(offsets, (o) => o[2]);
  const step = Int32Array.from(offsets, ([a, b, c]) => a * s0 + b * s1 + c);
  for (let i = 0, v = 0; i < n0; i++)
    for (let j = 0; j < n1; j++)
      for (let k = 0; k < n2; k++, v++) {
        if (!mask[v]) continue;
        let root = 0;
        // away from the faces of the grid every neighbour exists: no bounds to check
        const inside = i > 0 && j > 0 && j < n1 - 1 && k > 0 && k < n2 - 1;
        for (let q = 0; q < count; q++) {
          if (!inside) {
            const jj = j + (db[q] as number);
            const kk = k + (dc[q] as number);
            if (i + (da[q] as number) < 0 || jj < 0 || jj >= n1 || kk < 0 || kk >= n2) continue;
          }
          const l = labels[v + (step[q] as number)] as number;
          if (l === 0) continue;
          const r = find(l);
          if (root === 0) root = r;
          else if (r !== root) {
            // keep the smaller (earlier) root so numbering follows first voxels
            if (r < root) {
              parent[root] = r;
              root = r;
            } else parent[r] = root;
          }
        }
        if (root === 0) {
          root = parent.length;
          parent.push(root);
        }
        labels[v] = root;
      }
  // second pass: final, consecutive numbers in order of first voxel
  const final = new Int32Array(parent.length);
  const sizes: number[] = [];
  for (let v = 0; v < labels.length; v++) {
    const l = labels[v] as number;
    if (l === 0) continue;
    const r = find(l);
    if (final[r] === 0) {
      sizes.push(0);
      final[r] = sizes.length;
    }
    const f = final[r] as number;
    labels[v] = f;
    sizes[f - 1] = (sizes[f - 1] as number) + 1;
  }
  return { labels, sizes };
}

/**
 * MONAI `KeepLargestConnectedComponent` on one binary mask: keeps the `count` largest components (ties: the one
 * whose first voxel comes first); a mask with at most `count` components is returned unchanged (as 0/1).
 * @param mask - non-zero = foreground, C-order `[d0, d1, d2]`
 * @param dims - `[d0, d1, d2]`
 * @param connectivity - default 3 (MONAI's `None`)
 * @param count - components to keep (MONAI `num_components`, default 1)
 * @returns a new 0/1 mask
 */
export function keepLargestComponents(
  mask: ArrayLike<number>,
  dims: readonly [number, number, number],
  connectivity: Connectivity = 3,
  count = 1,
): Uint8Array {
  return largestOf(connectedComponents(mask, dims, connectivity), count);
}

/**
 * {@link keepLargestComponents} on components already labelled (the mask they came from need not be labelled twice).
 * @param components - from {@link connectedComponents}
 * @param count - components to keep
 * @returns a new 0/1 mask
 */
export function largestOf({ labels, sizes }: Components, count = 1): Uint8Array {
  const keep = new Uint8Array(sizes.length + 1);
  const order = sizes.map((s, c) => c).sort((a, b) => (sizes[b] as number) - (sizes[a] as number) || a - b);
  for (const c of order.slice(0, count)) keep[c + 1] = 1;
  const out = new Uint8Array(labels.length);
  for (let v = 0; v < labels.length; v++) out[v] = keep[labels[v] as number] as number;
  return out;
}

/**
 * MONAI `RemoveSmallObjects` on one binary mask: removes components of fewer than `minVoxels` voxels.
 * @param mask - non-zero = foreground, C-order `[d0, d1, d2]`
 * @param dims - `[d0, d1, d2]`
 * @param minVoxels - the smallest size kept
 * @param connectivity - default 1 (MONAI's default for this transform)
 * @returns a new 0/1 mask
 */
export function removeSmallComponents(
  mask: ArrayLike<number>,
  dims: readonly [number, number, number],
  minVoxels: number,
  connectivity: Connectivity = 1,
): Uint8Array {
  requireInput(Number.isFinite(minVoxels) && minVoxels >= 0, `minVoxels must be ≥ 0, got ${minVoxels}`);
  const { labels, sizes } = connectedComponents(mask, dims, connectivity);
  const out = new Uint8Array(labels.length);
  for (let v = 0; v < labels.length; v++) {
    const l = labels[v] as number;
    if (l !== 0 && (sizes[l - 1] as number) >= minVoxels) out[v] = 1;
  }
  return out;
}

/**
 * MONAI's `by_measure` conversion of a size in mm³ to voxels: `ceil(mm³ / voxel volume)`.
 * @param mm3 - size in mm³
 * @param spacing - voxel size in mm
 */
export function voxelsForVolume(mm3: number, spacing: readonly number[]): number {
  const voxel = spacing.reduce((p, s) => p * s, 1);
  return Math.ceil(mm3 / (voxel === 0 ? 1 : voxel));
}
