/**
 * Test helper: validates DICOM files with `dciodvfy` (Debian's dicom3tools). Tests use it when the tool is
 * installed and require it under `CI=true` (the CI script installs dicom3tools).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether dciodvfy can run here; throws under CI when it cannot. */
export function dciodvfyAvailable(): boolean {
  const probe = spawnSync('dciodvfy', ['-help'], { encoding: 'utf8' });
  const ok = probe.error === undefined;
  if (!ok && process.env['CI'] === 'true')
    throw new Error('CI=true but dciodvfy is not installed (apt-get install -y dicom3tools)');
  return ok;
}

/**
 * Runs dciodvfy on each file.
 * @returns the `Error` lines per file (empty when the file is valid), with the file index
 */
export function dciodvfyErrors(files: readonly Uint8Array[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'cdss-dciodvfy-'));
  try {
    const errors: string[] = [];
    files.forEach((bytes, idx) => {
      const path = join(dir, `f${idx}.dcm`);
      writeFileSync(path, bytes);
      const r = spawnSync('dciodvfy', [path], { encoding: 'utf8' });
      const out = `${r.stdout}\n${r.stderr}`;
      for (const line of out.split('\n')) if (/^Error/.test(line)) errors.push(`file ${idx}: ${line}`);
    });
    return errors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
