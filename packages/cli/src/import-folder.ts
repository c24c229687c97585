/**
 * `cdss import <folder>`: every DICOM Part-10 file under a folder, uploaded to Orthanc a few at a time; anything
 * else is skipped and listed.
 */
import { open, readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { OrthancClient } from '@cdss/orthanc-client';

/** What an import did. */
export interface ImportSummary {
  folder: string;
  /** Files found (DICOM or not). */
  files: number;
  /** Newly stored instances. */
  stored: number;
  /** Instances Orthanc already had. */
  alreadyStored: number;
  /** DICOM files that could not be stored, with why. */
  failed: Array<{ file: string; error: string }>;
  /** Files that are not DICOM Part 10, with why. */
  skipped: Array<{ file: string; reason: string }>;
  /** Orthanc ids of the studies the files belong to. */
  studies: string[];
  /** Bytes uploaded. */
  bytes: number;
}

/** Progress of an import: `done` of `total` DICOM files sent. */
export interface ImportProgress {
  done: number;
  total: number;
  file: string;
}

async function listFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Why a file is not DICOM Part 10, or undefined when it is (128-byte preamble, then `DICM`: PS3.10 §7.1). */
async function notDicom(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(132);
    const { bytesRead } = await handle.read(head, 0, 132, 0);
    if (bytesRead < 132) return `${bytesRead} bytes: too short for a DICOM file`;
    if (head.toString('latin1', 128, 132) !== 'DICM') return 'no DICM prefix after the 128-byte preamble';
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Imports a folder.
 * @param folder - searched recursively
 * @param orthanc - where to store
 * @param options - `concurrency` (default 4), progress, abort
 * @returns the summary (failures are in it; the function itself throws only for an unreadable folder)
 */
export async function importFolder(
  folder: string,
  orthanc: OrthancClient,
  options: { concurrency?: number; onProgress?: (p: ImportProgress) => void; signal?: AbortSignal } = {},
): Promise<ImportSummary> {
  const files = await listFiles(folder);
  const summary: ImportSummary = {
    folder,
    files: files.length,
    stored: 0,
    alreadyStored: 0,
    failed: [],
    skipped: [],
    studies: [],
    bytes: 0,
  };
  const dicom: string[] = [];
  for (const file of files) {
    const reason = await notDicom(file);
    if (reason) summary.skipped.push({ file: relative(folder, file), reason });
    else dicom.push(file);
  }
  const studies = new Set<string>();
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < dicom.length) {
      options.signal?.throwIfAborted();
      const file = dicom[next++]!;
      const name = relative(folder, file);
      try {
        const bytes = await readFile(file);
        const result = await orthanc.uploadInstance(bytes, options.signal ? { signal: options.signal } : {});
        summary.bytes += bytes.length;
        if (result.Status === 'Success') summary.stored++;
        else if (result.Status === 'AlreadyStored') summary.alreadyStored++;
        else summary.failed.push({ file: name, error: `Orthanc answered ${result.Status}` });
        if (result.Status === 'Success' || result.Status === 'AlreadyStored') studies.add(result.ParentStudy);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        summary.failed.push({ file: name, error: (error as Error).message });
      }
      options.onProgress?.({ done: ++done, total: dicom.length, file: name });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  summary.failed.sort((a, b) => a.file.localeCompare(b.file));
  summary.studies = [...studies].sort();
  return summary;
}
