/**
 * `Idempotency-Key` against the OpenEMR emulator made to commit a patient and then time out (the answer never comes):
 * the key stays `unknown`, and the client's retry reads OpenEMR back instead of creating a second patient. Run with
 * the memory stores (sandbox) and with the MySQL idempotency store and outbox (connected-mode state) when MariaDB runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type RequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, listenOnFreePort, requireService } from '@cdss/core/testing';
import { FhirAdapter, identifierSystems } from '@cdss/fhir-mapper';
import { createOpenEmrEmulator } from '@cdss/sandbox';
import type { Patient } from 'fhir/r4.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { openEmrEmulatorEnv } from './upstreams.js';

const mariadb = await requireService('mariadb');

/**
 * Test-only fault: while armed, `POST .../api/patient` is handled (the patient is committed) but its answer is
 * swallowed, so the caller sees a timeout exactly as after a lost response.
 */
function commitThenHang(): { middleware: RequestHandler; armed: { value: boolean } } {
  const armed = { value: false };
  const middleware: RequestHandler = (req, res, next) => {
    if (armed.value && req.method === 'POST' && /\/api\/patient$/.test(req.path)) {
      const swallow = (() => res) as unknown as typeof res.end;
      res.end = swallow;
      res.write = (() => true) as unknown as typeof res.write;
    }
    next();
  };
  return { middleware, armed };
}

async function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  const server = createServer(app);
  await listenOnFreePort(server);
  const address = server.address();
  return { server, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

const variants = [
  { name: 'memory stores', env: {} as Record<string, string>, skip: false },
  { name: 'MySQL idempotency store and outbox', env: { MYSQL_URL: mariadb.url }, skip: !mariadb.available },
];

describe.each(variants)('a create that OpenEMR committed but never answered ($name)', ({ env, skip }) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-idem-'));
  const fault = commitThenHang();
  let emulator: { server: Server; url: string };
  let composed: ComposedServer;
  let baseUrl: string;
  let token: string;

  beforeAll(async () => {
    if (skip) return;
    emulator = await listen(
      express()
        .use(fault.middleware)
        .use(createOpenEmrEmulator({ dataDir: join(dataDir, 'openemr'), seed: true })),
    );
    composed = await composeServer(
      loadConfig({
        CDSS_DATA_DIR: join(dataDir, 'server'),
        CDSS_SANDBOX_STUDIES: '0',
        CDSS_WORKER: 'off',
        CDSS_LOG_LEVEL: 'silent',
        CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
        ...openEmrEmulatorEnv(emulator.url),
        OPENEMR_TIMEOUT_MS: '1500',
        ...env,
      }),
      createLogger('silent'),
      'test',
    );
    baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
    const issued = await fetch(`${baseUrl}/api/sandbox/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'demo-physician' }),
    });
    token = ((await issued.json()) as { access_token: string }).access_token;
  }, 120_000);

  afterAll(async () => {
    await composed?.close();
    emulator?.server.closeAllConnections();
    await new Promise((resolve) => emulator?.server.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const create = (body: unknown, key: string) =>
    fetch(`${baseUrl}/api/patients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });

  it.skipIf(skip)(
    'keeps the key unknown after the timeout, and the retry finds the committed patient: one patient, one FHIR sync',
    async () => {
      const run = Math.random().toString(36).slice(2, 8);
      const input = { givenName: 'Tess', familyName: `Timeout${run}`, birthDate: '1966-06-16', sex: 'female' };
      const key = `retry-after-timeout-${run}`;

      fault.armed.value = true;
      const first = await create(input, key);
      fault.armed.value = false;
      expect(first.status).toBe(504);

      const retry = await create(input, key);
      expect(retry.status).toBe(201);
      const patient = (await retry.json()) as { id: string; familyName: string };
      expect(patient.familyName).toBe(input.familyName);
      // a third send replays the same answer
      const again = await create(input, key);
      expect(again.status).toBe(201);
      expect(((await again.json()) as { id: string }).id).toBe(patient.id);

      // exactly one such patient in OpenEMR: the retry read it back instead of writing again
      const search = await fetch(`${baseUrl}/api/patients?q=${input.familyName}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const items = ((await search.json()) as { items: Array<{ id: string }> }).items;
      expect(items.map((p) => p.id)).toEqual([patient.id]);

      // and its FHIR sync was queued once, with the answer: the embedded FHIR server gets one Patient
      const fhir = new FhirAdapter({ baseUrl: composed.embedded.fhir! });
      const identifier = { system: identifierSystems('default').patientUuid, value: patient.id };
      await expect
        .poll(async () => (await fhir.findByIdentifier<Patient>('Patient', identifier)).length, { timeout: 15_000 })
        .toBe(1);
    },
    60_000,
  );

  it.skipIf(skip)(
    'a retry with the same key and another body answers 422 even while the outcome is unknown',
    async () => {
      const run = Math.random().toString(36).slice(2, 8);
      const input = { givenName: 'Uma', familyName: `Unknown${run}`, birthDate: '1977-07-17', sex: 'female' };
      const key = `unknown-other-body-${run}`;
      fault.armed.value = true;
      expect((await create(input, key)).status).toBe(504);
      fault.armed.value = false;
      expect((await create({ ...input, givenName: 'Ulla' }, key)).status).toBe(422);
      expect((await create(input, key)).status).toBe(201);
    },
    60_000,
  );
});
