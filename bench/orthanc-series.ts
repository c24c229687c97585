/**
 * 240×240×155 four-series MR study through @cdss/orthanc-client vs curl on the real Orthanc: download into volumes, and upload.
 *
 * Needs the real Orthanc (`npm run services -- start orthanc`; URL from CDSS_TEST_ORTHANC_URL or the default).
 * A synthetic study (4 series × 155 slices of 240×240 uint16, 620 Part-10 files, 72 MB) is generated, then:
 *
 * - download: the client retrieves the 4 series over WADO-RS (`retrieveSeriesVolume`, the 4 in parallel: one
 *   streamed multipart request each, read from its socket into one reused buffer, each slice's pixels copied into
 *   staging memory as they arrive, then built into volumes), against one curl process fetching the same 4 WADO-RS
 *   URLs in parallel to /dev/null. Two client variants: `pooled`, as a worker downloading study after study runs
 *   (the volumes of a round are given back to a `VoxelBufferPool` when done, so the next round reuses their
 *   memory), and `fresh`, new memory for every volume. Interleaved rounds, rotating order; MB/s are pixel
 *   megabytes (4 × 17.86 MB) per second, medians of the rounds. Volumes are checked voxel-equal to the
 *   generator's in the first round of each variant.
 * - upload: `uploadInstances` (4 in flight) against curl POSTing the same 620 files to /instances, 4 in
 *   parallel (one process, `--parallel`), each on an empty store (the patient is deleted between rounds).
 *
 * curl is timed from the moment it has started and waits for its config on stdin to its exit, so its process
 * start-up is not part of its figure (see `timedCurl`).
 *
 * Output (JSON lines): upload, download with fresh memory, and last the download with the pool (the headline).
 * Settings (environment): BENCH_ROUNDS (download rounds per side, default 7, max 10), BENCH_UPLOAD_ROUNDS (default 2, max 5).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireService } from '@cdss/core/testing';
import { generatePhantom, writePhantomStudy, PHANTOM_MODALITIES, VoxelBufferPool } from '@cdss/dicom';
import { OrthancClient, retrieveSeriesVolume } from '@cdss/orthanc-client';
import { intEnv } from './_lib.js';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * Runs curl with `args` plus a config read from its stdin, and times only its work: curl is started first and the
 * clock starts once it waits for its config (blocked reading the pipe, as /proc/<pid>/wchan shows), so its process
 * start-up (exec, loading libcurl and TLS libraries) is not counted, as the client's module loading is not either.
 * @returns the milliseconds from handing curl its config to its exit
 */
async function timedCurl(args: string[], config: string): Promise<number> {
  const p = spawn('curl', [...args, '-K', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited ${code}: ${err.slice(0, 300)}`))));
  });
  for (const deadline = performance.now() + 5_000; performance.now() < deadline;) {
    let wchan = '';
    try {
      wchan = readFileSync(`/proc/${p.pid}/wchan`, 'utf8');
    } catch {
      // not there yet, or no /proc: wait out the deadline
    }
    if (wchan.includes('pipe_read')) break;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const t = performance.now();
  p.stdin.end(config);
  await exited;
  return performance.now() - t;
}

async function main(): Promise<void> {
  const svc = await requireService('orthanc', { ci: true });
  const downloadRounds = intEnv('BENCH_ROUNDS', 7, 10);
  const uploadRounds = intEnv('BENCH_UPLOAD_ROUNDS', 2, 5);
  const url = new URL(svc.url);
  const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  url.username = '';
  url.password = '';
  const base = url.href.replace(/\/$/, '');
  const client = new OrthancClient({ baseUrl: svc.url, concurrency: 4 });

  let t = performance.now();
  const phantom = generatePhantom({ seed: 240, dims: [240, 240, 155] });
  const patientId = `BENCH-${process.pid}-${Date.now()}`;
  const study = writePhantomStudy(phantom, { patientId, uidSeed: `bench/${patientId}` });
  const files = PHANTOM_MODALITIES.flatMap((m) => study.series[m].files);
  const totalBytes = files.reduce((s, f) => s + f.length, 0);
  log(
    `generated ${files.length} files (${(totalBytes / 1e6).toFixed(1)} MB) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'cdss-bench-orthanc-'));
  const paths = files.map((f, i) => {
    const p = join(dir, `${i}.dcm`);
    writeFileSync(p, f);
    return p;
  });
  const curlUploadConfig = paths
    .map(
      (p) =>
        `url = "${base}/instances"\nuser = "${user}"\nheader = "Content-Type: application/dicom"\nheader = "Expect:"\ndata-binary = "@${p}"\noutput = "/dev/null"\n`,
    )
    .join('next\n');
  const deletePatient = async (): Promise<void> => {
    for (const p of await client.find({ level: 'Patient', query: { PatientID: patientId } }))
      await client.delete('Patient', p.ID);
  };

  try {
    await deletePatient();
    // ---- upload
    const up = { client: [] as number[], curl: [] as number[] };
    for (let r = 0; r < uploadRounds; r++) {
      for (const side of r % 2 === 0 ? (['client', 'curl'] as const) : (['curl', 'client'] as const)) {
        await deletePatient();
        let ms: number;
        if (side === 'client') {
          t = performance.now();
          const res = await client.uploadInstances(files);
          ms = performance.now() - t;
          if (!res.every((x) => x.Status === 'Success')) throw new Error('client upload did not store every instance');
        } else {
          ms = await timedCurl(['-sS', '--fail', '-Z', '--parallel-max', '4'], curlUploadConfig);
        }
        up[side].push(totalBytes / 1e6 / (ms / 1000));
      }
    }
    const stats = await client.getStatistics();
    log(
      `upload MB/s client ${up.client.map((x) => x.toFixed(1)).join(', ')} | curl ${up.curl.map((x) => x.toFixed(1)).join(', ')} (store now ${stats.CountInstances} instances)`,
    );
    const found = await client.find({ level: 'Series', query: { PatientID: patientId } });
    if (found.length !== 4 || found.some((s) => s.Instances.length !== 155))
      throw new Error('study not completely stored after upload');

    // ---- download
    const pixelMB = (4 * 240 * 240 * 155 * 2) / 1e6;
    const wado = PHANTOM_MODALITIES.map(
      (m) => `${base}/dicom-web/studies/${study.studyInstanceUid}/series/${study.series[m].seriesInstanceUid}`,
    );
    const curlArgs = ['-sS', '--fail', '-Z', '--parallel-max', '4'];
    const curlDownloadConfig =
      `user = "${user}"\nheader = "Accept: multipart/related; type=\\"application/dicom\\""\n` +
      wado.map((u) => `url = "${u}"\noutput = "/dev/null"\n`).join('');
    const pool = new VoxelBufferPool();
    const clientDownload = async (pooled: boolean, check: boolean): Promise<void> => {
      const vols = await Promise.all(
        PHANTOM_MODALITIES.map((m) =>
          retrieveSeriesVolume(
            client.dicomweb,
            study.studyInstanceUid,
            study.series[m].seriesInstanceUid,
            pooled ? { pool } : {},
          ),
        ),
      );
      if (check) {
        vols.forEach((v, i) => {
          const want = phantom.modalities[PHANTOM_MODALITIES[i] as (typeof PHANTOM_MODALITIES)[number]].data;
          if (!Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength).equals(Buffer.from(want.buffer)))
            throw new Error('downloaded volume differs from the generator');
        });
      }
      if (pooled) for (const v of vols) pool.release(v);
    };
    // warm-up (twice: the first round fills the pools and the JIT) + correctness
    for (const check of [true, false]) {
      await clientDownload(true, check);
      await clientDownload(false, check);
      await timedCurl(curlArgs, curlDownloadConfig);
    }
    const sides = ['pooled', 'curl', 'fresh'] as const;
    const down = { pooled: [] as number[], fresh: [] as number[], curl: [] as number[] };
    for (let r = 0; r < downloadRounds; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(r + k) % sides.length] as (typeof sides)[number];
        let ms: number;
        if (side === 'curl') ms = await timedCurl(curlArgs, curlDownloadConfig);
        else {
          t = performance.now();
          await clientDownload(side === 'pooled', false);
          ms = performance.now() - t;
        }
        down[side].push(pixelMB / (ms / 1000));
      }
    }
    const list = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    log(`download MB/s pooled ${list(down.pooled)} | fresh ${list(down.fresh)} | curl ${list(down.curl)}`);
    const upC = median(up.client);
    const upB = median(up.curl);
    process.stdout.write(
      `${JSON.stringify({ bench: 'orthanc-series-upload', unit: 'MB/s', value: +upC.toFixed(2), baseline: +upB.toFixed(2), baseline_name: 'curl POST /instances, 4 in parallel', ratio: +(upC / upB).toFixed(3) })}\n`,
    );
    const dB = median(down.curl);
    for (const [bench, value] of [
      ['orthanc-series-fresh-memory', median(down.fresh)],
      ['orthanc-series', median(down.pooled)],
    ] as const) {
      process.stdout.write(
        `${JSON.stringify({ bench, unit: 'MB/s', value: +value.toFixed(2), baseline: +dB.toFixed(2), baseline_name: 'curl WADO-RS retrieve series, 4 in parallel', ratio: +(value / dB).toFixed(3) })}\n`,
      );
    }
  } finally {
    await deletePatient().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`orthanc-series bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
