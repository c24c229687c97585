import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { MONAI_FIXTURES, referenceModelPath } from './__fixtures__/monai/reference.js';
import {
  loadModelManifest,
  loadMonaiBundle,
  manifestFromMonaiBundle,
  parseModelManifest,
  sha256File,
} from './manifest.js';

const BUNDLE = join(MONAI_FIXTURES, 'bundle');
const inference = JSON.parse(readFileSync(join(BUNDLE, 'configs', 'inference.json'), 'utf8')) as Record<
  string,
  unknown
>;
const metadata = JSON.parse(readFileSync(join(BUNDLE, 'configs', 'metadata.json'), 'utf8')) as Record<string, unknown>;
const tmp = mkdtempSync(join(tmpdir(), 'cdss-manifest-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('manifest from a MONAI bundle (brats_mri_segmentation layout)', () => {
  it('reads channels, window, overlap, activation, threshold, label rule, spacing and intended use', () => {
    const m = manifestFromMonaiBundle(inference, metadata, { name: 'brats_mri_segmentation' });
    expect(m.input.channels).toEqual(['T1c', 'T1', 'T2', 'FLAIR']);
    expect(m.input.normalize).toEqual({ nonzero: true, channelWise: true });
    expect(m.input.spacingMm).toEqual([1, 1, 1]);
    expect(m.inference).toEqual({
      roiSize: [240, 240, 160],
      swBatchSize: 1,
      overlap: 0.5,
      mode: 'constant',
      sigmaScale: 0.125,
      cval: 0,
    });
    expect(m.output).toEqual({
      activation: 'sigmoid',
      channels: ['Tumor core', 'Whole tumor', 'Enhancing tumor'],
      threshold: 0.5,
      regions: { tc: 0, wt: 1, et: 2 },
    });
    expect(m.etLabel).toBe(4);
    expect(m.labels).toEqual({ '1': 'NCR', '2': 'ED', '4': 'ET' });
    expect(m.model).toMatchObject({ inputName: 'image', outputName: 'pred', spatialMultiple: 8, format: 'onnx' });
    expect(m.version).toBe('0.5.2');
    expect(m.intendedUse).toMatch(/not to be used for diagnostic/);
    expect(m.notForClinicalUse).toBe(true);
  });

  it('reads the BraTS 2023 label rule (ET = 3)', () => {
    const inf = clone(inference) as { postprocessing: { transforms: Record<string, unknown>[] } };
    const lambda = inf.postprocessing.transforms.find((t) => t['_target_'] === 'Lambdad')!;
    lambda['func'] = '$lambda x: torch.where(x[[2]] > 0, 3, torch.where(x[[0]] > 0, 1, torch.where(x[[1]] > 0, 2, 0)))';
    const m = manifestFromMonaiBundle(inf, metadata);
    expect(m.etLabel).toBe(3);
    expect(m.labels['3']).toBe('ET');
  });

  it('refuses a preprocessing step the pipeline does not reproduce, naming it', () => {
    const inf = clone(inference) as { preprocessing: { transforms: unknown[] } };
    inf.preprocessing.transforms.splice(1, 0, { _target_: 'CropForegroundd', keys: 'image', source_key: 'image' });
    expect(() => manifestFromMonaiBundle(inf, metadata)).toThrow(/CropForegroundd/);
    try {
      manifestFromMonaiBundle(inf, metadata);
    } catch (e) {
      expect(ValidationError.isInstance(e)).toBe(true);
      expect((e as ValidationError).fields).toEqual(['preprocessing.transforms.1']);
    }
  });

  it('reads Orientationd axcodes and Spacingd pixdim, which the pipeline reproduces', () => {
    const inf = clone(inference) as { preprocessing: { transforms: unknown[] } };
    inf.preprocessing.transforms.splice(
      1,
      0,
      { _target_: 'Orientationd', keys: 'image', axcodes: 'ras' },
      { _target_: 'Spacingd', keys: 'image', pixdim: [1.5, 1.5, 2], mode: ['bilinear', 'nearest'] },
    );
    const m = manifestFromMonaiBundle(inf, metadata);
    expect([m.input.axcodes, m.input.spacingMm]).toEqual(['RAS', [1.5, 1.5, 2]]);
    expect(manifestFromMonaiBundle(inference, metadata).input.axcodes).toBe('RAS');
    inf.preprocessing.transforms.splice(2, 1, { _target_: 'Spacingd', keys: 'image', pixdim: [1, -1, 1] });
    expect(() => manifestFromMonaiBundle(inf, metadata)).toThrow(/pixdim/);
  });

  it('refuses a channel_def that disagrees with in_channels, and a missing inferer', () => {
    const md = clone(metadata) as {
      network_data_format: { inputs: { image: { channel_def: Record<string, string> } } };
    };
    delete md.network_data_format.inputs.image.channel_def['3'];
    expect(() => manifestFromMonaiBundle(inference, md)).toThrow(/in_channels/);
    const inf = clone(inference);
    delete inf['inferer'];
    expect(() => manifestFromMonaiBundle(inf, metadata)).toThrow(ValidationError);
  });

  it('loads a bundle folder with its ONNX export and records the sha256', async () => {
    const modelFile = relative(BUNDLE, referenceModelPath());
    const { manifest, modelPath } = await loadMonaiBundle(BUNDLE, { modelFile });
    expect(modelPath).toBe(referenceModelPath());
    expect(manifest.model.sha256).toBe(await sha256File(modelPath));
    expect(manifest.name).toBe('bundle');
  });

  it('fails clearly when the bundle has no ONNX export', async () => {
    await expect(loadMonaiBundle(BUNDLE)).rejects.toThrow(/Model file missing/);
    await expect(loadMonaiBundle(tmp)).rejects.toThrow(/Cannot read bundle configs\/inference.json/);
  });
});

describe('manifest.json', () => {
  const good = manifestFromMonaiBundle(inference, metadata, { modelFile: referenceModelPath() });

  it('round-trips through JSON and loads with the model path resolved', async () => {
    const path = join(tmp, 'manifest.json');
    writeFileSync(
      path,
      JSON.stringify({ ...good, model: { ...good.model, file: relative(tmp, referenceModelPath()) } }),
    );
    const loaded = await loadModelManifest(path);
    expect(loaded.modelPath).toBe(referenceModelPath());
    expect(loaded.manifest.inference).toEqual(good.inference);
  });

  it('rejects a model file whose sha256 differs', async () => {
    const path = join(tmp, 'bad-sha.json');
    writeFileSync(path, JSON.stringify({ ...good, model: { ...good.model, sha256: '0'.repeat(64) } }));
    await expect(loadModelManifest(path)).rejects.toThrow(/does not match the manifest/);
  });

  it('names every bad field', () => {
    const bad = clone(good) as Record<string, unknown> & {
      inference: Record<string, unknown>;
      output: Record<string, unknown>;
    };
    bad.inference['roiSize'] = [240, 240, 155]; // not a multiple of 8
    bad.inference['overlap'] = 1;
    bad.output['regions'] = { tc: 0, wt: 1, et: 5 };
    delete bad['intendedUse'];
    try {
      parseModelManifest(bad);
      expect.unreachable();
    } catch (e) {
      expect(ValidationError.isInstance(e)).toBe(true);
      const fields = (e as ValidationError).fields;
      expect(fields).toEqual(expect.arrayContaining(['intendedUse', 'inference.overlap']));
    }
    bad.inference['overlap'] = 0.5;
    bad['intendedUse'] = 'x';
    expect(() => parseModelManifest(bad)).toThrow(/inference\.roiSize\.2|output\.regions\.et/);
  });

  it('rejects unreadable and non-JSON manifests', async () => {
    await expect(loadModelManifest(join(tmp, 'nope.json'))).rejects.toThrow(/Cannot read model manifest/);
    writeFileSync(join(tmp, 'garbage.json'), '{ not json');
    await expect(loadModelManifest(join(tmp, 'garbage.json'))).rejects.toThrow(/not JSON/);
  });
});
