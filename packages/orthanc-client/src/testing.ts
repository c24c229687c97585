/**
 * Test kit of `@cdss/orthanc-client`: a synthetic-study fixture and the Orthanc contract suite, which the
 * package runs against the real Orthanc and against the sandbox's DICOM store emulator (and which any other
 * Orthanc-compatible server can be held to).
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zipSync, unzipSync } from 'fflate';
import { HttpError } from '@cdss/core';
import {
  generatePhantom,
  segSourceFromPart10,
  writePhantomStudy,
  writeSeg,
  PHANTOM_MODALITIES,
  VoxelBufferPool,
  type Phantom,
  type PhantomModality,
  type Vec3,
  type WrittenStudy,
} from '@cdss/dicom';
import type { OrthancClient, OrthancChange } from './index.js';
import { dicomNumbers, dicomString } from './dicom-json.js';
import {
  retrieveSeg,
  retrieveSeriesVolume,
  retrieveSeriesVolumeRest,
  retrieveStudyInput,
  segSourceFromMetadata,
} from './volumes.js';

/** A synthetic four-series study, ready to upload. */
export interface PhantomStudyFixture {
  /** The generator's output (ground truth voxels and labels). */
  phantom: Phantom;
  /** The written study (UIDs and Part-10 files per series). */
  study: WrittenStudy;
  /** The SEG of the phantom's labels on the T1c grid. */
  seg: Uint8Array;
}

/**
 * Builds a synthetic study with a unique PatientID (so tests on a shared server never collide).
 * @param options - seed, grid size, PatientID prefix
 */
export function createPhantomStudyFixture(
  options: { seed?: number; dims?: Vec3; patientIdPrefix?: string } = {},
): PhantomStudyFixture {
  const phantom = generatePhantom({ seed: options.seed ?? 21, dims: options.dims ?? [48, 48, 16] });
  const patientId = `${options.patientIdPrefix ?? 'CDSS-TEST'}-${randomUUID().slice(0, 8)}`;
  // A scan date and time other than the writer's defaults, so the suite sees them carried through the server.
  const study = writePhantomStudy(phantom, {
    patientId,
    uidSeed: `fixture/${patientId}`,
    studyDate: '20260412',
    studyTime: '093015',
  });
  const seg = writeSeg(phantom.labels, segSourceFromPart10(study.series.t1c.files), {
    algorithm: { type: 'AUTOMATIC', name: 'contract-test', version: '1' },
  });
  return { phantom, study, seg };
}

/** What the contract suite needs of a target server. */
export interface OrthancContractTarget {
  /** Name shown in the test titles. */
  name: string;
  /** Gives a client of the server (called once, in beforeAll). */
  client: () => Promise<OrthancClient> | OrthancClient;
  /** Seconds until Stable* changes fire on this server (its StableAge), to bound the wait; default 2. */
  stableAgeSeconds?: number;
  /** True when no other client writes to the server during the suite (then global counts are checked too). */
  exclusive?: boolean;
}

function same(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Registers the Orthanc contract suite (vitest) for one target. Uses a small synthetic study, and deletes it
 * at the end.
 * @param target - the server
 */
export function orthancContract(target: OrthancContractTarget): void {
  describe(`Orthanc contract: ${target.name}`, () => {
    let client: OrthancClient;
    let fx: PhantomStudyFixture;
    let startSeq = 0;
    let patientOrthancId = '';
    const uids = (m: PhantomModality): { study: string; series: string } => ({
      study: fx.study.studyInstanceUid,
      series: fx.study.series[m].seriesInstanceUid,
    });

    beforeAll(async () => {
      client = await target.client();
      fx = createPhantomStudyFixture({ patientIdPrefix: 'CONTRACT' });
      startSeq = await client.getLastChangeSeq();
    });
    afterAll(async () => {
      if (patientOrthancId) await client.delete('Patient', patientOrthancId).catch(() => undefined);
    });

    it('answers /system', async () => {
      const sys = await client.getSystem();
      expect(sys.ApiVersion).toBeGreaterThanOrEqual(16);
      expect(typeof sys.Name).toBe('string');
    });

    it('uploads a 4-series study: single instances, a ZIP and STOW-RS; repeats are AlreadyStored', async () => {
      let progressed = 0;
      const t1 = await client.uploadInstances(fx.study.series.t1.files, { onProgress: (p) => (progressed = p.done) });
      expect(progressed).toBe(fx.study.series.t1.files.length);
      expect(t1.every((r) => r.Status === 'Success')).toBe(true);
      patientOrthancId = t1[0]!.ParentPatient;
      expect((await client.uploadInstances(fx.study.series.t2.files)).every((r) => r.Status === 'Success')).toBe(true);
      const zip = zipSync(Object.fromEntries(fx.study.series.t1c.files.map((f, i) => [`t1c/${i}.dcm`, f])), {
        level: 0,
      });
      const zipped = await client.uploadZip(zip);
      expect(zipped).toHaveLength(fx.study.series.t1c.files.length);
      const stow = await client.dicomweb.storeInstances(fx.study.series.flair.files, {
        studyInstanceUid: fx.study.studyInstanceUid,
      });
      expect(stow.stored).toHaveLength(fx.study.series.flair.files.length);
      expect((await client.uploadInstance(fx.study.series.t1.files[0]!)).Status).toBe('AlreadyStored');
      const n = PHANTOM_MODALITIES.reduce((s, m) => s + fx.study.series[m].files.length, 0);
      // Counted for this patient only: the server may be shared with other clients.
      expect(await client.find({ level: 'Instance', query: { PatientID: fx.study.patientId } })).toHaveLength(n);
    });

    it('rejects a non-DICOM upload with an HttpError and stores nothing', async () => {
      const before = await client.getStatistics();
      const err = await client
        .uploadInstance(new TextEncoder().encode('this is not DICOM'.repeat(20)))
        .catch((e: unknown) => e);
      expect(HttpError.isInstance(err)).toBe(true);
      expect((err as HttpError).status).toBe(400);
      // Global counts only mean something on a server no other client writes to.
      if (target.exclusive) expect((await client.getStatistics()).CountInstances).toBe(before.CountInstances);
    });

    it('finds the study by patient and by UID (REST and QIDO-RS)', async () => {
      const pid = fx.study.patientId;
      const studies = await client.find({ level: 'Study', query: { PatientID: pid } });
      expect(studies).toHaveLength(1);
      expect(studies[0]!.MainDicomTags['StudyInstanceUID']).toBe(fx.study.studyInstanceUid);
      const t2ish = await client.find({ level: 'Series', query: { PatientID: pid, SeriesDescription: 'T2*' } });
      expect(t2ish.map((s) => s.MainDicomTags['SeriesDescription']).sort()).toEqual(['T2 FLAIR', 'T2 TSE']);
      const lookup = await client.lookup(fx.study.studyInstanceUid);
      expect(lookup).toEqual([expect.objectContaining({ Type: 'Study', ID: studies[0]!.ID })]);
      expect(await client.lookup(`1.2.3.${Date.now()}`)).toEqual([]);
      const qido = await client.dicomweb.searchForStudies({ match: { PatientID: pid } });
      expect(qido).toHaveLength(1);
      expect(dicomString(qido[0]!, 'StudyInstanceUID')).toBe(fx.study.studyInstanceUid);
      expect(dicomNumbers(qido[0]!, 'NumberOfStudyRelatedSeries')).toEqual([4]);
      // StudyDate/StudyTime order a patient's timeline (issue #18): both come back from REST and QIDO-RS.
      expect(dicomString(qido[0]!, 'StudyDate')).toBe('20260412');
      expect(dicomString(qido[0]!, 'StudyTime')).toBe('093015');
      expect(studies[0]!.MainDicomTags).toMatchObject({ StudyDate: '20260412', StudyTime: '093015' });
      expect(
        await client.dicomweb.searchForStudies({ match: { StudyInstanceUID: fx.study.studyInstanceUid } }),
      ).toHaveLength(1);
      const series = await client.dicomweb.searchForSeries(fx.study.studyInstanceUid, { match: { Modality: 'MR' } });
      expect(series.map((s) => dicomString(s, 'SeriesDescription')).sort()).toEqual([
        'T1 3D MPRAGE',
        'T1 3D MPRAGE post-contrast',
        'T2 FLAIR',
        'T2 TSE',
      ]);
      const inst = await client.dicomweb.searchForInstances(
        fx.study.studyInstanceUid,
        fx.study.series.t2.seriesInstanceUid,
      );
      expect(inst).toHaveLength(fx.study.series.t2.files.length);
    });

    it('reads metadata: resources, simplified tags, ordered slices, WADO-RS metadata', async () => {
      const [series] = await client.find({
        level: 'Series',
        query: { PatientID: fx.study.patientId, SeriesDescription: 'T2 TSE' },
      });
      expect(series!.Instances).toHaveLength(16);
      const study = await client.getStudy(series!.ParentStudy);
      expect(study.Series).toHaveLength(4);
      expect((await client.getStudySeries(study.ID)).length).toBe(4);
      const ordered = await client.getOrderedSlices(series!.ID);
      expect(ordered.SlicesShort).toHaveLength(16);
      const firstTags = await client.getSimplifiedTags(ordered.SlicesShort[0]![0]);
      const v = fx.phantom.modalities.t2;
      expect(String(firstTags['ImagePositionPatient']).split('\\').map(Number)).toEqual(v.origin);
      expect(firstTags['SeriesDescription']).toBe('T2 TSE');
      const meta = await client.dicomweb.retrieveSeriesMetadata(uids('t2').study, uids('t2').series);
      expect(meta).toHaveLength(16);
      const zs = meta.map((d) => dicomNumbers(d, 'ImagePositionPatient')![2]!).sort((a, b) => a - b);
      expect(zs[0]).toBeCloseTo(v.origin[2], 5);
      expect(dicomNumbers(meta[0]!, 'Rows')).toEqual([48]);
      const raw = await client.getRawFrame(ordered.SlicesShort[3]![0]);
      const plane = 48 * 48;
      expect(same(raw, v.data.subarray(3 * plane, 4 * plane))).toBe(true);
      const sop = dicomString(
        meta.find((d) => dicomNumbers(d, 'ImagePositionPatient')![2] === zs[3])!,
        'SOPInstanceUID',
      )!;
      const [frame] = await client.dicomweb.retrieveInstanceFrames(uids('t2').study, uids('t2').series, sop, [1]);
      expect(same(frame!, v.data.subarray(3 * plane, 4 * plane))).toBe(true);
    });

    it('retrieves every series as a volume equal to the generator voxels', async () => {
      for (const m of PHANTOM_MODALITIES) {
        const vol = await retrieveSeriesVolume(client.dicomweb, uids(m).study, uids(m).series);
        expect(vol.dims).toEqual(fx.phantom.modalities[m].dims);
        expect(vol.origin).toEqual(fx.phantom.modalities[m].origin);
        expect(same(vol.data, fx.phantom.modalities[m].data), m).toBe(true);
      }
      const [flair] = await client.find({
        level: 'Series',
        query: { PatientID: fx.study.patientId, SeriesDescription: 'T2 FLAIR' },
      });
      const rest = await retrieveSeriesVolumeRest(client, flair!.ID);
      expect(same(rest.data, fx.phantom.modalities.flair.data)).toBe(true);
      const input = await retrieveStudyInput(client.dicomweb, fx.study.studyInstanceUid);
      expect(input.seriesInstanceUids).toEqual({
        t1c: uids('t1c').series,
        t1: uids('t1').series,
        t2: uids('t2').series,
        flair: uids('flair').series,
      });
      expect(same(input.channels[0].data, fx.phantom.modalities.t1c.data)).toBe(true);
    });

    it('reports download progress, reuses pooled memory, and cancels in the middle of a series', async () => {
      const pool = new VoxelBufferPool();
      const loaded: number[] = [];
      const first = await retrieveSeriesVolume(client.dicomweb, uids('t2').study, uids('t2').series, {
        pool,
        onProgress: (p) => loaded.push(p.loaded),
      });
      expect(same(first.data, fx.phantom.modalities.t2.data)).toBe(true);
      expect(loaded.length).toBeGreaterThan(0);
      expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
      expect(loaded.at(-1)).toBeGreaterThan(first.data.byteLength);
      pool.release(first);
      const second = await retrieveSeriesVolume(client.dicomweb, uids('t2').study, uids('t2').series, { pool });
      expect(same(second.data, fx.phantom.modalities.t2.data)).toBe(true);

      const controller = new AbortController();
      await expect(
        retrieveSeriesVolume(client.dicomweb, uids('t1').study, uids('t1').series, {
          signal: controller.signal,
          onProgress: () => controller.abort(new Error('user left')),
        }),
      ).rejects.toThrow('user left');
    });

    it('cancels a series download with an AbortSignal', async () => {
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await expect(
        retrieveSeriesVolume(client.dicomweb, uids('t1').study, uids('t1').series, { signal: controller.signal }),
      ).rejects.toThrow('stop');
    });

    it('reads the SEG source of a series from its metadata, as from its files', async () => {
      const meta = await client.dicomweb.retrieveSeriesMetadata(uids('t1c').study, uids('t1c').series);
      expect(segSourceFromMetadata(meta)).toEqual(segSourceFromPart10(fx.study.series.t1c.files));
    });

    it('stores a SEG and reads it back equal to the label map', async () => {
      const stored = await client.dicomweb.storeInstances([fx.seg]);
      expect(stored.stored).toHaveLength(1);
      const segSeries = await client.dicomweb.searchForSeries(fx.study.studyInstanceUid, {
        match: { Modality: 'SEG' },
      });
      expect(segSeries).toHaveLength(1);
      const segSeriesUid = dicomString(segSeries[0]!, 'SeriesInstanceUID')!;
      const grid = await retrieveSeriesVolume(client.dicomweb, uids('t1c').study, uids('t1c').series);
      const back = await retrieveSeg(client.dicomweb, fx.study.studyInstanceUid, segSeriesUid, stored.stored[0]!, grid);
      expect(same(back.labels.data, fx.phantom.labels.data)).toBe(true);
      expect(back.referencedSeriesInstanceUid).toBe(uids('t1c').series);
    });

    it('downloads archives as a stream, directly and through an asynchronous job', async () => {
      const [t1] = await client.find({
        level: 'Series',
        query: { PatientID: fx.study.patientId, SeriesDescription: 'T1 3D MPRAGE' },
      });
      const collect = async (s: AsyncIterable<Buffer>): Promise<Uint8Array> => {
        const chunks: Buffer[] = [];
        for await (const c of s) chunks.push(c);
        return Buffer.concat(chunks);
      };
      const direct = unzipSync(await collect(await client.downloadArchive('Series', t1!.ID)));
      expect(Object.values(direct).filter((f) => f.length > 0)).toHaveLength(16);
      const job = await client.createArchiveJob('Series', t1!.ID);
      const done = await client.waitForJob(job, { pollIntervalMs: 100 });
      expect(done.State).toBe('Success');
      const viaJob = unzipSync(await collect(await client.downloadJobArchive(job)));
      expect(Object.values(viaJob).filter((f) => f.length > 0)).toHaveLength(16);
    });

    it('follows /changes and resumes after a watcher restart without gaps or repeats', async () => {
      const all: OrthancChange[] = [];
      for await (const c of client.changes({ since: startSeq, follow: false, limit: 7 })) all.push(c);
      const mine = new Set(all.map((c) => c.ID));
      const instancesUploaded = PHANTOM_MODALITIES.reduce((s, m) => s + fx.study.series[m].files.length, 0) + 1;
      expect(all.filter((c) => c.ChangeType === 'NewInstance').length).toBeGreaterThanOrEqual(instancesUploaded);
      expect(mine.has(patientOrthancId)).toBe(true);
      // First watcher: stops (restart) after 25 changes, keeping the last Seq it processed as its checkpoint.
      const first: OrthancChange[] = [];
      for await (const c of client.changes({ since: startSeq, follow: false, limit: 10 })) {
        first.push(c);
        if (first.length === 25) break;
      }
      const checkpoint = first[first.length - 1]!.Seq;
      const second: OrthancChange[] = [];
      for await (const c of client.changes({ since: checkpoint, follow: false, limit: 10 })) second.push(c);
      const seqs = [...first, ...second].map((c) => c.Seq);
      // Changes made after the full pass (Stable* timers, other clients) may follow; compare up to its end.
      const end = all[all.length - 1]!.Seq;
      expect(seqs.filter((q) => q <= end)).toEqual(all.map((c) => c.Seq));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      // A following watcher sees a change made after it started, and stops cleanly on abort.
      const [t1] = await client.find({
        level: 'Series',
        query: { PatientID: fx.study.patientId, SeriesDescription: 'T1 3D MPRAGE' },
      });
      const controller = new AbortController();
      const seen: OrthancChange[] = [];
      const from = await client.getLastChangeSeq();
      const watcher = (async () => {
        for await (const c of client.changes({ since: from, pollIntervalMs: 100, signal: controller.signal })) {
          seen.push(c);
          if (c.ChangeType === 'StableSeries' && c.ID === t1!.ID) controller.abort();
        }
      })();
      const deadline = Date.now() + ((target.stableAgeSeconds ?? 2) + 15) * 1000;
      await client.uploadInstance(fx.study.series.t1.files[0]!); // AlreadyStored: no change
      // Touch a series: delete one instance and upload it again, which makes it unstable and then stable again.
      await client.delete('Instance', t1!.Instances[0]!);
      await client.uploadInstances(fx.study.series.t1.files);
      while (!controller.signal.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      controller.abort();
      await watcher;
      expect(seen.some((c) => c.ChangeType === 'NewInstance')).toBe(true);
      expect(seen.some((c) => c.ChangeType === 'StableSeries' && c.ID === t1!.ID)).toBe(true);
    }, 40_000);

    it('deletes the patient; a second delete reports it gone', async () => {
      expect(await client.delete('Patient', patientOrthancId)).toBe(true);
      expect(await client.find({ level: 'Study', query: { PatientID: fx.study.patientId } })).toEqual([]);
      expect(await client.delete('Patient', patientOrthancId)).toBe(false);
      patientOrthancId = '';
    });
  });
}
