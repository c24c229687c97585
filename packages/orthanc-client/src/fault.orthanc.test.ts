/**
 * Fault test on a private, real Orthanc (own folder and ports, started by scripts/services): Orthanc is stopped
 * for real (SIGTERM to its PID, by the script) while a change watcher runs and an upload is attempted.
 * Nothing is lost: the watcher resumes from its checkpoint after the restart and sees every change exactly
 * once, the failed upload is repeated (uploads are idempotent), a download during the outage fails with a clear
 * error, and every series comes back voxel-equal.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import { OrthancClient } from './client.js';
import type { OrthancChange } from './schemas.js';
import { createPhantomStudyFixture } from './testing.js';
import { retrieveSeriesVolume } from './volumes.js';

const run = promisify(execFile);
const shared = await requireService('orthanc'); // the packages are installed wherever the shared Orthanc runs
const script = resolve(import.meta.dirname, '../../../scripts/services/services.sh');
const HTTP_PORT = 27142;

describe.skipIf(!shared.available)('orthanc-client when Orthanc is stopped and restarted (private instance)', () => {
  let dir = '';
  let env: NodeJS.ProcessEnv = {};
  const services = (cmd: 'start' | 'stop'): Promise<unknown> =>
    run('bash', [script, cmd, 'orthanc'], { env, timeout: 60_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdss-orthanc-fault-'));
    env = {
      ...process.env,
      CDSS_SERVICES_DIR: dir,
      ORTHANC_HTTP_PORT: String(HTTP_PORT),
      ORTHANC_DICOM_PORT: '27242',
      ORTHANC_STABLE_AGE: '1',
    };
    await services('start');
  });
  afterAll(async () => {
    await services('stop').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('loses no change and no instance across a real stop/start', async () => {
    const client = new OrthancClient({
      baseUrl: `http://ci:ci-secret@127.0.0.1:${HTTP_PORT}`,
      retry: { maxRetries: 1, baseDelayMs: 50 },
    });
    const fx = createPhantomStudyFixture({ dims: [32, 32, 8], patientIdPrefix: 'FAULT' });
    let checkpoint = await client.getLastChangeSeq();
    const seen: OrthancChange[] = [];
    const controller = new AbortController();
    let failures = 0;
    // A supervised watcher: on an error it waits and resumes from the last change it processed.
    const supervisor = (async () => {
      while (!controller.signal.aborted) {
        try {
          for await (const c of client.changes({ since: checkpoint, pollIntervalMs: 50, signal: controller.signal })) {
            seen.push(c);
            checkpoint = c.Seq;
          }
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    const waitFor = async (cond: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const newInstances = (): number => seen.filter((c) => c.ChangeType === 'NewInstance').length;

    await client.uploadInstances(fx.study.series.t1.files);
    await waitFor(() => newInstances() === 8, 'the first series in the feed');

    await services('stop'); // SIGTERM to the recorded PID; returns once the process is gone
    const during = await client.uploadInstances(fx.study.series.t2.files).catch((e: unknown) => e);
    expect(during).toBeInstanceOf(Error);
    // A download during the outage fails clearly (after the retries) instead of hanging or returning a part.
    const download = await retrieveSeriesVolume(
      client.dicomweb,
      fx.study.studyInstanceUid,
      fx.study.series.t1.seriesInstanceUid,
    ).catch((e: unknown) => e);
    expect(download).toBeInstanceOf(Error);
    expect((download as Error).message).toMatch(/ECONNREFUSED|no response/);
    await waitFor(() => failures > 0, 'the watcher to notice the outage');

    await services('start');
    const again = await client.uploadInstances(fx.study.series.t2.files); // repeat: idempotent
    expect(again.every((r) => r.Status === 'Success' || r.Status === 'AlreadyStored')).toBe(true);
    await waitFor(() => newInstances() === 16, 'the second series in the feed');
    controller.abort();
    await supervisor;

    const seqs = seen.map((c) => c.Seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    for (const m of ['t1', 't2'] as const) {
      const v = await retrieveSeriesVolume(
        client.dicomweb,
        fx.study.studyInstanceUid,
        fx.study.series[m].seriesInstanceUid,
      );
      expect(
        Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).equals(
          Buffer.from(fx.phantom.modalities[m].data.buffer),
        ),
      ).toBe(true);
    }
  }, 90_000);
});
