/** The Orthanc contract suite against the sandbox's DICOM store emulator (files in a temporary folder). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createDicomStoreEmulator, type DicomStoreEmulator } from '@cdss/sandbox';
import { OrthancClient } from './client.js';
import { orthancContract } from './testing.js';

const root = mkdtempSync(join(tmpdir(), 'cdss-dicom-store-'));
let emulator: DicomStoreEmulator | undefined;
afterAll(async () => {
  await emulator?.close();
  rmSync(root, { recursive: true, force: true });
});

orthancContract({
  name: 'sandbox DICOM store emulator',
  stableAgeSeconds: 1,
  exclusive: true,
  client: async () => {
    emulator = await createDicomStoreEmulator({
      root,
      credentials: { username: 'u', password: 'p' },
      stableAgeSeconds: 1,
    });
    return new OrthancClient({ baseUrl: emulator.url.replace('http://', 'http://u:p@') });
  },
});
