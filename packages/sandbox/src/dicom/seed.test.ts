import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seedPhantomStudies } from './seed.js';
import { DicomFileStore } from './store.js';

const root = mkdtempSync(join(tmpdir(), 'cdss-dicom-seed-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('seedPhantomStudies', () => {
  it('stores a four-series study per patient, idempotently', () => {
    const store = new DicomFileStore({ root });
    const [study] = seedPhantomStudies(store, [{ patientId: 'DEMO-1', patientName: 'DEMO^ALICE', seed: 1 }], {
      dims: [16, 16, 8],
    });
    expect(store.instances.size).toBe(32);
    expect(store.lookup(study!.studyInstanceUid)).toEqual([expect.objectContaining({ level: 'Study' })]);
    seedPhantomStudies(store, [{ patientId: 'DEMO-1', patientName: 'DEMO^ALICE', seed: 1 }], { dims: [16, 16, 8] });
    expect(store.instances.size).toBe(32);
    store.close();
  });
});
