import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '@cdss/core/testing';
import { generatePhantom, writePhantomStudy, PHANTOM_MODALITIES } from '@cdss/dicom';
import { OrthancClient } from '@cdss/orthanc-client';
import { createDicomStoreEmulator, type DicomStoreEmulator } from '@cdss/sandbox';
import { EXIT, runCli, type CliIo } from './run.js';
import type { ImportSummary } from './import-folder.js';

const work = mkdtempSync(join(tmpdir(), 'cdss-cli-'));
const RUN = Math.random().toString(36).slice(2, 8);

/** A folder of one 4-series phantom study (4 × 50 = 200 DICOM files, in sub-folders) and 5 files that are not DICOM. */
function studyFolder(patientId: string): string {
  const folder = mkdtempSync(join(work, 'import-'));
  const study = writePhantomStudy(generatePhantom({ seed: 5, dims: [24, 24, 50] }), { patientId });
  for (const m of PHANTOM_MODALITIES) {
    mkdirSync(join(folder, m));
    study.series[m].files.forEach((f, i) => writeFileSync(join(folder, m, `${String(i).padStart(3, '0')}.dcm`), f));
  }
  writeFileSync(join(folder, 'README.txt'), 'scanned on the 3 T unit\n');
  writeFileSync(join(folder, 'empty.dcm'), '');
  writeFileSync(join(folder, 't1', 'DICOMDIR.bak'), Buffer.alloc(131, 1));
  writeFileSync(join(folder, 'photo.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, ...new Array(300).fill(7)]));
  writeFileSync(join(folder, 'no-prefix.dcm'), Buffer.alloc(400, 0));
  return folder;
}

/** Runs the program in process, capturing its output. */
async function cdss(argv: string[], env: Record<string, string> = {}, tty = false) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: tty, columns: 100 },
    env,
    cwd: work,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

let emulator: DicomStoreEmulator;
let emulatorUrl: string;
beforeAll(async () => {
  emulator = await createDicomStoreEmulator({
    root: mkdtempSync(join(work, 'store-')),
    credentials: { username: 'u', password: 'p' },
  });
  emulatorUrl = `http://u:p@127.0.0.1:${emulator.port}`;
});
afterAll(async () => {
  await emulator?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('cdss import', () => {
  it('uploads 200 DICOM files, skips and lists 5 others (--json), and reports repeats as already stored', async () => {
    const folder = studyFolder(`CLI-${RUN}`);
    const first = await cdss(['--json', 'import', folder], { CDSS_ORTHANC_URL: emulatorUrl });
    expect(first.code).toBe(EXIT.ok);
    const summary = JSON.parse(first.stdout) as ImportSummary;
    expect(summary).toMatchObject({ files: 205, stored: 200, alreadyStored: 0, failed: [] });
    expect(summary.studies).toHaveLength(1);
    expect(summary.skipped.map((s) => s.file).sort()).toEqual(
      ['README.txt', 'empty.dcm', 'no-prefix.dcm', 'photo.jpg', join('t1', 'DICOMDIR.bak')].sort(),
    );
    const again = await cdss(['--orthanc', emulatorUrl, '--json', 'import', folder]);
    expect(JSON.parse(again.stdout)).toMatchObject({ stored: 0, alreadyStored: 200, failed: [] });
  });

  it('shows a progress bar on a terminal and ends with a summary', async () => {
    const folder = studyFolder(`CLI-TTY-${RUN}`);
    const { code, stdout, stderr } = await cdss(['--orthanc', emulatorUrl, 'import', folder], {}, true);
    expect(code).toBe(EXIT.ok);
    expect(stderr).toMatch(/importing \[[=-]{40}\] \d+\/200/);
    expect(stderr).toContain('200/200');
    expect(stdout).toContain('imported 200 of 200 DICOM files');
    expect(stdout).toContain('skipped 5 non-DICOM files:');
    expect(stdout).toContain('photo.jpg: no DICM prefix after the 128-byte preamble');
    expect(stdout).not.toContain('u:p@');
  });

  it('fails with exit code 1 and names the files Orthanc refused', async () => {
    const folder = studyFolder(`CLI-FAIL-${RUN}`);
    // A file with the DICM prefix whose dataset is garbage: the store refuses it.
    const bad = Buffer.alloc(300, 0x41);
    bad.write('DICM', 128, 'latin1');
    writeFileSync(join(folder, 'broken.dcm'), bad);
    const { code, stdout } = await cdss(['--orthanc', emulatorUrl, '--json', 'import', folder]);
    expect(code).toBe(EXIT.failed);
    const summary = JSON.parse(stdout) as ImportSummary;
    expect(summary.failed.map((f) => f.file)).toEqual(['broken.dcm']);
    expect(summary.stored + summary.alreadyStored).toBe(200);
  });
});

const orthanc = await requireService('orthanc');
describe.skipIf(!orthanc.available)('cdss import into the real Orthanc', () => {
  it('imports 200 DICOM files and skips 5 non-DICOM ones', async () => {
    const patientId = `CLI-REAL-${RUN}`;
    const folder = studyFolder(patientId);
    const client = new OrthancClient({ baseUrl: orthanc.url });
    try {
      const { code, stdout } = await cdss(['--json', 'import', folder], { CDSS_ORTHANC_URL: orthanc.url });
      expect(code).toBe(EXIT.ok);
      expect(JSON.parse(stdout)).toMatchObject({ files: 205, stored: 200, failed: [] });
      expect(await client.find({ level: 'Instance', query: { PatientID: patientId } })).toHaveLength(200);
      const status = await cdss(['--json', 'status'], { CDSS_ORTHANC_URL: orthanc.url });
      expect(status.code).toBe(EXIT.ok);
      expect(JSON.parse(status.stdout)).toMatchObject({ ok: true, checks: [{ name: 'orthanc', ok: true }] });
    } finally {
      for (const p of await client.find({ level: 'Patient', query: { PatientID: patientId } }))
        await client.delete('Patient', p.ID);
    }
  }, 120_000);
});

describe('cdss configuration, usage and status', () => {
  it('takes flags over environment over the config file, and refuses a bad value with exit code 3', async () => {
    writeFileSync(join(work, 'cdss.config.json'), JSON.stringify({ orthanc: 'http://127.0.0.1:1' }));
    const fromFile = await cdss(['--json', 'status']);
    expect(fromFile.code).toBe(EXIT.failed); // port 1: down
    expect(JSON.parse(fromFile.stdout).checks[0]).toMatchObject({
      name: 'orthanc',
      url: 'http://127.0.0.1:1',
      ok: false,
    });
    const fromEnv = await cdss(['--json', 'status'], { CDSS_ORTHANC_URL: emulatorUrl });
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ ok: true });
    const fromFlag = await cdss(['--json', '--orthanc', 'http://127.0.0.1:1', 'status'], {
      CDSS_ORTHANC_URL: emulatorUrl,
    });
    expect(JSON.parse(fromFlag.stdout)).toMatchObject({ ok: false });
    rmSync(join(work, 'cdss.config.json'));
    const bad = await cdss(['status'], { CDSS_ORTHANC_URL: 'not a url' });
    expect(bad.code).toBe(EXIT.config);
    expect(bad.stderr).toMatch(/invalid configuration/);
    expect((await cdss(['import', work])).code).toBe(EXIT.config); // no Orthanc at all
  });

  it('answers bad usage with exit code 2 and --help with 0', async () => {
    expect((await cdss(['frobnicate'])).code).toBe(EXIT.usage);
    expect((await cdss(['import'])).code).toBe(EXIT.usage);
    expect((await cdss(['report', 'a1', '--format', 'docx', '-o', 'x'])).code).toBe(EXIT.usage);
    const help = await cdss(['--help']);
    expect(help.code).toBe(EXIT.ok);
    expect(help.stdout).toContain('import');
  });
});
