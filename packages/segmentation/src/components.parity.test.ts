import { describe, expect, it } from 'vitest';
import { array, spatialReference } from './__fixtures__/monai-spatial/reference.js';
import { maxAbsDiff } from './__fixtures__/monai/reference.js';
import {
  connectedComponents,
  keepLargestComponents,
  largestOf,
  removeSmallComponents,
  voxelsForVolume,
  type Connectivity,
} from './components.js';

/** Applies `op` to each channel of a [C, d0, d1, d2] array. */
function perChannel(name: string, op: (mask: Uint8Array, dims: [number, number, number]) => Uint8Array): Uint8Array {
  const { data, shape } = array(name);
  const [c, ...dims] = shape;
  const n = data.length / c;
  const out = new Uint8Array(data.length);
  for (let ch = 0; ch < c; ch++)
    out.set(op(Uint8Array.from(data.subarray(ch * n, (ch + 1) * n)), dims as [number, number, number]), ch * n);
  return out;
}

describe('MONAI parity of the lesion clean-up', () => {
  it.each(spatialReference.cases.components.map((c) => [c.op, c.output, c] as const))(
    '%s → %s: identical masks',
    (_op, _out, c) => {
      const connectivity = (c.connectivity ?? 3) as Connectivity;
      const got =
        c.op === 'keep_largest'
          ? perChannel(c.input, (m, dims) => keepLargestComponents(m, dims, connectivity))
          : perChannel(c.input, (m, dims) =>
              removeSmallComponents(
                m,
                dims,
                c.by_measure ? voxelsForVolume(c.min_size ?? 0, c.pixdim ?? [1, 1, 1]) : (c.min_size ?? 0),
                connectivity,
              ),
            );
      const want = array(c.output).data;
      expect(maxAbsDiff(got, want)).toBe(0);
      if (c.op === 'keep_largest') {
        // the same from components labelled once (studyFindings reuses the whole tumour's)
        const reused = perChannel(c.input, (m, dims) => largestOf(connectedComponents(m, dims, connectivity)));
        expect(maxAbsDiff(reused, want)).toBe(0);
      }
      // the vectors must exercise the transform: it removed something
      expect(maxAbsDiff(got, array(c.input).data)).toBe(1);
    },
  );

  it('numbers components in raster order and counts them by connectivity', () => {
    // two voxels touching only at a corner: one component with 26-connectivity, two with 6 or 18
    const mask = new Uint8Array(8);
    mask[0] = 1; // (0,0,0)
    mask[7] = 1; // (1,1,1)
    expect(connectedComponents(mask, [2, 2, 2], 3).sizes).toEqual([2]);
    expect(connectedComponents(mask, [2, 2, 2], 2).sizes).toEqual([1, 1]);
    mask[3] = 1; // (0,1,1): an edge neighbour of both
    expect(connectedComponents(mask, [2, 2, 2], 2).sizes).toEqual([3]);
    // (0,1,1) and (1,1,1) share a face; (0,0,0) touches (0,1,1) only along an edge
    expect(connectedComponents(mask, [2, 2, 2], 1).sizes).toEqual([1, 2]);
  });

  it('keeps the first of equally large components', () => {
    const mask = Uint8Array.from([1, 0, 1]);
    expect([...keepLargestComponents(mask, [1, 1, 3])]).toEqual([1, 0, 0]);
  });
});
