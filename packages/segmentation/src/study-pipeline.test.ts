import { describe, expect, it } from 'vitest';
import { generatePhantom, type Volume } from '@cdss/dicom';
import { modelManifestSchema } from './manifest.js';
import { prepareStudy, studyFindings } from './study-pipeline.js';
import { connectedComponents, keepLargestComponents } from './components.js';
import { plausibilityFlags } from './flags.js';
import { measureLesions } from './measure.js';
import { bratsVolumes, largestDiameter } from './postprocess.js';
import { normalizeIntensity } from './normalize.js';
import { labelsToVolume, volumesToInput, type SegmentationResult } from './segmentation.js';
import { orient, resample } from './spatial.js';
import { SegmentationError } from './segmentation-errors.js';

const manifest = modelManifestSchema.parse({
  schemaVersion: 1,
  name: 'test',
  version: '1',
  intendedUse: 'tests',
  notForClinicalUse: true,
  model: { file: 'm.onnx', format: 'onnx', inputName: 'image', outputName: 'pred' },
  input: { channels: ['T1c', 'T1', 'T2', 'FLAIR'], spacingMm: [2, 2, 2], axcodes: 'RAS', normalize: null },
  inference: { roiSize: [32, 32, 32] },
  output: { activation: 'sigmoid', channels: ['TC', 'WT', 'ET'], threshold: 0.5, regions: { tc: 0, wt: 1, et: 2 } },
  labels: { '1': 'NCR', '2': 'ED', '4': 'ET' },
  etLabel: 4,
  postprocessing: { components: { keepLargest: ['wt'] } },
});

const phantom = generatePhantom({ seed: 'pipeline', dims: [40, 44, 36], spacing: [2, 2, 2] });
const channel = (v: Volume, frameOfReferenceUid = '2.25.7') => ({
  volume: { ...v, data: Float32Array.from(v.data) },
  frameOfReferenceUid,
  seriesInstanceUid: `2.25.${v.data.length}`,
});
const channels = {
  t1c: channel(phantom.modalities.t1c),
  t1: channel(phantom.modalities.t1),
  t2: channel(phantom.modalities.t2),
  flair: channel(phantom.modalities.flair),
};

/** A "model result" that is the ground truth on the model grid plus a stray island. */
function truthResult(prepared: ReturnType<typeof prepareStudy>): SegmentationResult {
  const labels = prepareStudy(
    { ...manifest, input: { ...manifest.input, channels: ['L'] } },
    { l: { volume: { ...phantom.labels, data: Float32Array.from(phantom.labels.data) } } },
  ).input.data;
  const out = Uint8Array.from(labels);
  out[0] = 2; // a one-voxel island of oedema in a corner
  const dims = prepared.modelGrid.dims;
  return {
    labels: out,
    dims,
    spacingMm: [...prepared.modelGrid.spacing],
    etLabel: 4,
    volumes: bratsVolumes(out, prepared.modelGrid.spacing),
    wholeTumourDiameter: undefined,
    windows: 1,
    timings: { normalizeMs: 0, inferenceMs: 0, predictorMs: 0, networkMs: 0, postprocessMs: 0 },
    model: { name: 'test', version: '1', intendedUse: 'tests', notForClinicalUse: true },
  };
}

describe('prepareStudy and studyFindings', () => {
  it('reorients without interpolating when the spacing already fits, and maps the labels back exactly', () => {
    const prepared = prepareStudy(manifest, channels);
    expect(prepared.interpolated).toBe(false);
    expect(prepared.input.shape).toEqual([4, 40, 44, 36]);
    const findings = studyFindings(truthResult(prepared), prepared, manifest);
    // the stray island is gone (keep largest WT) and every other voxel is the phantom's own, on its grid
    expect(Buffer.from(findings.labels.data).equals(Buffer.from(phantom.labels.data))).toBe(true);
    expect(findings.rawComponents).toBe(2);
    expect(findings.flags).toEqual([]);
    expect(findings.volumes.wt.mL).toBeCloseTo((findings.volumes.wt.voxels * 8) / 1000, 9);
    expect(findings.lesions.length).toBeGreaterThan(0);
  });

  it('normalises in the reordering pass exactly as NormalizeIntensity(nonzero, channel_wise) does afterwards', () => {
    const withNorm = { ...manifest, input: { ...manifest.input, normalize: { nonzero: true, channelWise: true } } };
    const fused = prepareStudy(withNorm, channels);
    expect(fused.normalized).toBe(true);
    const plain = prepareStudy(manifest, channels);
    expect(plain.normalized).toBe(false);
    const after = normalizeIntensity(plain.input.data, plain.input.shape, { nonzero: true, channelWise: true }).data;
    let worst = 0;
    for (let v = 0; v < after.length; v++) worst = Math.max(worst, Math.abs(fused.input.data[v]! - after[v]!));
    expect(worst).toBeLessThanOrEqual(1e-6);
  });

  it.each([
    ['axial LPS', [1, 0, 0, 0, 1, 0, 0, 0, 1]],
    ['permuted axes', [0, 1, 0, 0, 0, 1, 1, 0, 0]],
  ])('reorders a long third axis (%s) exactly as Orientation followed by channel stacking', (_name, direction) => {
    // 150 voxels along the axis written last: several slabs of the transpose, the last one partial
    const dims: [number, number, number] = [9, 7, 150];
    const volume = (c: number): Volume => ({
      dims,
      spacing: [2, 2, 2],
      origin: [0, 0, 0],
      direction: direction as Volume['direction'],
      data: Float32Array.from({ length: 9 * 7 * 150 }, (_, v) => ((v * 7919 + c * 104729) % 1000) + 1),
    });
    const study = Object.fromEntries(['t1c', 't1', 't2', 'flair'].map((n, c) => [n, { volume: volume(c) }]));
    const prepared = prepareStudy(manifest, study);
    const oriented = Object.fromEntries(Object.entries(study).map(([n, c]) => [n, orient(c.volume, 'RAS')]));
    const want = volumesToInput(manifest, oriented);
    expect(prepared.input.shape).toEqual(want.shape);
    expect(Buffer.from(prepared.input.data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
  });

  it('resamples a channel on another grid of the same frame of reference onto the T1c grid', () => {
    const coarse = generatePhantom({ seed: 'pipeline', dims: [20, 22, 18], spacing: [4, 4, 4] });
    const prepared = prepareStudy(manifest, { ...channels, flair: channel(coarse.modalities.flair) });
    expect(prepared.resampledChannels).toEqual(['FLAIR']);
  });

  it('refuses series in another frame of reference, naming the series', () => {
    const other = { ...channels, t2: channel(phantom.modalities.t2, '2.25.8') };
    expect(() => prepareStudy(manifest, other)).toThrow(SegmentationError);
    expect(() => prepareStudy(manifest, other)).toThrow(/T2.*FrameOfReferenceUID 2\.25\.8/);
  });
});

describe('studyFindings measures a block of the grid exactly as the whole grid', () => {
  /** C-order `[d0, d1, d2]` of a volume (i fastest). */
  const cOrder = (v: Volume<Uint8Array>): Uint8Array => {
    const [nx, ny, nz] = v.dims;
    const out = new Uint8Array(v.data.length);
    for (let i = 0, o = 0; i < nx; i++)
      for (let j = 0; j < ny; j++) for (let k = 0; k < nz; k++) out[o++] = v.data[i + nx * (j + ny * k)]!;
    return out;
  };

  /** The phantom's truth on the model grid, with a stray island and a strand of oedema out to the grid's edge. */
  function resultOnModelGrid(truth: Volume<Uint8Array>, prepared: ReturnType<typeof prepareStudy>): SegmentationResult {
    const grid = prepared.modelGrid;
    const labels = cOrder(resample(truth, grid, 'nearest') as Volume<Uint8Array>);
    const [n0, n1, n2] = grid.dims;
    labels[(n0 - 2) * n1 * n2 + 1 * n2 + 1] = 4; // a one-voxel enhancing island: not the largest whole tumour
    // oedema from the first labelled voxel along d0 down to the grid's first plane: touches the field of view
    const first = labels.findIndex((l) => l !== 0);
    const [fi, fj, fk] = [Math.floor(first / (n1 * n2)), Math.floor(first / n2) % n1, first % n2];
    for (let i = 0; i < fi; i++) labels[(i * n1 + fj) * n2 + fk] = 2;
    return { ...truthResult(prepared), labels, dims: [...grid.dims], spacingMm: [...grid.spacing] };
  }

  /** What studyFindings computed before it worked on blocks: every step on the whole grid. */
  function wholeGrid(result: SegmentationResult, prepared: ReturnType<typeof prepareStudy>, m: typeof manifest) {
    const connectivity = m.postprocessing.components.connectivity;
    const wt = result.labels.map((l) => (l ? 1 : 0));
    const raw = connectedComponents(wt, result.dims, connectivity);
    const keep = keepLargestComponents(wt, result.dims, connectivity);
    const cleaned = result.labels.map((l, v) => (keep[v] ? l : 0));
    const labels = resample(labelsToVolume(cleaned, prepared.modelGrid), prepared.sourceGrid, 'nearest');
    const axial = orient(labels as Volume<Uint8Array>, 'RAS');
    const c = cOrder(axial);
    const volumes = bratsVolumes(c, axial.spacing, 4);
    const lesions = measureLesions(
      c.map((l) => (l === 4 ? 1 : 0)),
      axial.dims,
      axial.spacing,
      { connectivity, minMeasurableMm: m.postprocessing.minMeasurableMm },
    );
    const flags = plausibilityFlags(
      {
        wholeTumour: c.map((l) => (l ? 1 : 0)),
        dims: axial.dims,
        wholeTumourMl: volumes.wt.mL,
        rawComponents: raw.sizes.length,
        enhancingVoxels: 0,
        enhancingOutsideCore: 0,
      },
      m.postprocessing.plausibility,
    );
    return {
      labels: labels.data,
      volumes,
      wholeTumourDiameterMm: largestDiameter(c, axial.dims, axial.spacing)?.mm,
      lesions: lesions.lesions,
      sumOfProductsMm2: lesions.sumOfProductsMm2,
      flags,
      rawComponents: raw.sizes.length,
    };
  }

  const oblique: Volume['direction'] = [
    0.9848077530122081, 0.17364817766693033, 0, -0.17364817766693033, 0.9848077530122081, 0, 0, 0, 1,
  ];
  it.each([
    ['1 mm onto the 2 mm RAS grid', [70, 76, 60], [1, 1, 1], undefined, 'RAS'],
    ['0.9 × 0.9 × 3 mm onto the 2 mm RAS grid', [84, 88, 22], [0.9, 0.9, 3], undefined, 'RAS'],
    ['1 mm, oblique (rotated 10° about z)', [70, 76, 60], [1, 1, 1], oblique, 'RAS'],
    ['2 mm, reordered to a model whose third axis is not axial', [40, 44, 36], [2, 2, 2], undefined, 'SRA'],
  ] as const)('%s', (_name, dims, spacing, direction, axcodes) => {
    const m = { ...manifest, input: { ...manifest.input, axcodes } };
    const p = generatePhantom({ seed: 'blocks', dims: [...dims], spacing: [...spacing] });
    const withDirection = <T extends Volume['data']>(v: Volume<T>): Volume<T> =>
      direction ? { ...v, direction: [...direction] } : v;
    const study = Object.fromEntries(
      (['t1c', 't1', 't2', 'flair'] as const).map((n) => [n, channel(withDirection(p.modalities[n]))]),
    );
    const prepared = prepareStudy(m, study);
    const result = resultOnModelGrid(withDirection(p.labels), prepared);
    const findings = studyFindings(result, prepared, m);
    const want = wholeGrid(result, prepared, m);
    expect(Buffer.from(findings.labels.data).equals(Buffer.from(want.labels))).toBe(true);
    expect(findings.volumes).toEqual(want.volumes);
    expect(findings.wholeTumourDiameterMm).toBe(want.wholeTumourDiameterMm);
    expect(findings.lesions).toEqual(want.lesions);
    expect(findings.sumOfProductsMm2).toBe(want.sumOfProductsMm2);
    expect(findings.flags).toEqual(want.flags);
    expect(findings.flags.map((f) => f.code)).toContain('fov-edge');
    expect(findings.rawComponents).toBe(want.rawComponents);
    expect(findings.lesions.length).toBeGreaterThan(0);
  });
});
