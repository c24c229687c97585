import { describe, expect, it } from 'vitest';
import { generatePhantom, type Volume } from '@cdss/dicom';
import { modelManifestSchema } from './manifest.js';
import { prepareStudy, studyFindings } from './study-pipeline.js';
import { bratsVolumes } from './postprocess.js';
import { normalizeIntensity } from './normalize.js';
import { volumesToInput, type SegmentationResult } from './segmentation.js';
import { orient } from './spatial.js';
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
