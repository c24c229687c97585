import { describe, expect, it, vi } from 'vitest';
import { generatePhantom, VoxelBufferPool, writePhantomStudy, type InstanceSink } from '@cdss/dicom';
import type { OrthancClient } from '@cdss/orthanc-client';
import { DEMO_GRID } from '../compose.js';
import { dicomTime, orthancArchive } from './orthanc.js';

describe('dicomTime', () => {
  it.each([
    ['0815', '08:15:00'],
    ['081530', '08:15:30'],
    ['174000.123456', '17:40:00'],
    ['07', '07:00:00'],
    [' 120000 ', '12:00:00'],
  ])('reads the DICOM TM %j as %s', (tm, iso) => {
    expect(dicomTime(tm)).toBe(iso);
  });

  it.each([undefined, '', '8:15', '2561', '12:00:00', '996000'])('refuses %j', (tm) => {
    expect(dicomTime(tm)).toBeUndefined();
  });
});

describe('orthancArchive volume reads', () => {
  // A PACS that streams a series' instances to the sink as DICOMweb's retrieveSeriesInto does.
  const study = writePhantomStudy(generatePhantom({ seed: 'staging', ...DEMO_GRID }), { patientId: 'p-staging' });
  const client = {
    dicomweb: {
      retrieveSeriesInto: (
        _study: string,
        seriesUid: string,
        onInstance: (headers: Record<string, string>, length: number | undefined) => InstanceSink,
      ) => {
        const series = Object.values(study.series).find((s) => s.seriesInstanceUid === seriesUid)!;
        for (const file of series.files) {
          const sink = onInstance({}, file.byteLength);
          sink.write(file);
          sink.end();
        }
        return Promise.resolve();
      },
    },
  } as unknown as OrthancClient;

  it('keeps no staging memory between reads (a server reads volumes now and then; its RSS must not keep pages)', async () => {
    const pools = new Set<VoxelBufferPool>();
    const original = VoxelBufferPool.prototype.release;
    const release = vi.spyOn(VoxelBufferPool.prototype, 'release').mockImplementation(function (
      this: VoxelBufferPool,
      target,
    ) {
      pools.add(this);
      original.call(this, target);
    });
    try {
      const archive = orthancArchive(client);
      await Promise.all([
        archive.seriesVolume(study.studyInstanceUid, study.series.t1c.seriesInstanceUid),
        archive.seriesVolume(study.studyInstanceUid, study.series.flair.seriesInstanceUid),
      ]);
      const volume = await archive.seriesVolume(study.studyInstanceUid, study.series.t1.seriesInstanceUid);
      expect(volume.dims).toEqual(DEMO_GRID.dims);
      expect(pools.size).toBeGreaterThan(0);
      for (const pool of pools) expect(pool.retainedBytes).toBe(0);
    } finally {
      release.mockRestore();
    }
  });
});
