/**
 * The whole CDSS in sandbox mode, composed exactly as `npm start` does (embedded OpenEMR emulator, DICOM store, FHIR
 * server, in-memory jobs, in-process AI worker with the demo model), driven through its public HTTP API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { OrthancClient } from '@cdss/orthanc-client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { runClinicalFlow } from './flow.js';

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-sandbox-'));
let composed: ComposedServer;
let baseUrl: string;

beforeAll(async () => {
  const config = loadConfig({ CDSS_DATA_DIR: dataDir, CDSS_SANDBOX_STUDIES: '0', CDSS_LOG_LEVEL: 'warn', CDSS_RATE_LIMIT_PER_MINUTE: '10000' });
  composed = await composeServer(config, createLogger('warn'), 'test');
  baseUrl = `http://127.0.0.1:${await composed.server.listen(0, '127.0.0.1')}`;
}, 120_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('sandbox mode, end to end', () => {
  it('runs the clinical flow from patient creation to the reviewed report', async () => {
    await runClinicalFlow({ baseUrl, fhirUrl: composed.embedded.fhir!, orthanc: new OrthancClient({ baseUrl: composed.embedded.orthanc! }) });
  }, 240_000);
});
