/**
 * The whole CDSS in connected mode against the real Orthanc, RabbitMQ, MariaDB and HAPI FHIR started by
 * `scripts/services/` (OpenEMR through its emulator, run as its own process), with tokens verified against a public
 * key as a hospital's identity provider would issue them. Also: OpenEMR killed mid-run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { requireService } from '@cdss/core/testing';
import { OrthancClient } from '@cdss/orthanc-client';
import { basicAuth } from '@cdss/core';
import { createCdssClient, CdssApiError } from '@cdss/client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { runClinicalFlow } from './flow.js';
import { freePort, startTsProcess, type Child } from './processes.js';
import { connectedUpstreamEnv, createTestIdentityProvider } from './upstreams.js';

const services = await Promise.all(
  (['orthanc', 'rabbitmq', 'mariadb', 'hapi-fhir'] as const).map((name) => requireService(name)),
);
const [orthancSvc, , , hapiSvc] = services;
const available = services.every((s) => s.available);

describe.skipIf(!available)('connected mode on the real services', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-connected-'));
  const emulatorData = mkdtempSync(join(tmpdir(), 'cdss-openemr-'));
  let emulatorPort: number;
  let emulator: Child;
  let composed: ComposedServer;
  let baseUrl: string;
  let tokenFor: (userId: string) => Promise<string>;
  let connectedEnv: Record<string, string>;
  const orthancUrl = new URL(orthancSvc!.url);
  const orthanc = new OrthancClient({
    baseUrl: `${orthancUrl.protocol}//${orthancUrl.host}`,
    auth: basicAuth(decodeURIComponent(orthancUrl.username), decodeURIComponent(orthancUrl.password)),
  });

  const startEmulator = () =>
    startTsProcess(
      'test/openemr-emulator-process.ts',
      { PORT: String(emulatorPort), DATA_DIR: emulatorData },
      /^ready/m,
    );

  beforeAll(async () => {
    emulatorPort = await freePort();
    emulator = await startEmulator();
    const idp = await createTestIdentityProvider();
    tokenFor = (userId) => idp.tokenFor(userId);
    connectedEnv = {
      CDSS_MODE: 'connected',
      CDSS_DATA_DIR: dataDir,
      CDSS_LOG_LEVEL: 'warn',
      CDSS_RATE_LIMIT_PER_MINUTE: '10000',
      CDSS_CACHE_TTL_MS: '1000',
      ...idp.env,
      CDSS_WEBHOOK_SECRET: 'x'.repeat(40),
      ...connectedUpstreamEnv(`http://127.0.0.1:${emulatorPort}`, services),
    };
    composed = await composeServer(loadConfig(connectedEnv), createLogger('warn'), 'test');
    baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
  }, 180_000);

  afterAll(async () => {
    await composed?.close();
    await emulator?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(emulatorData, { recursive: true, force: true });
  });

  it('runs the clinical flow on Orthanc, RabbitMQ, MariaDB and HAPI FHIR', async () => {
    await runClinicalFlow({ baseUrl, fhirUrl: hapiSvc!.url, orthanc, tokenFor });
  }, 300_000);

  it('fans events out across server instances: a write on one reaches WebSocket clients of another', async () => {
    const second = await composeServer(
      loadConfig({ ...connectedEnv, CDSS_WORKER: 'off' }),
      createLogger('warn'),
      'test',
    );
    try {
      const secondUrl = `http://127.0.0.1:${await second.server.listen(await freePort(), '127.0.0.1')}`;
      const token = await tokenFor('demo-nurse');
      const client = createCdssClient({ baseUrl, getToken: () => token });
      const patient = await client.patients.create({
        givenName: 'Fan',
        familyName: 'Out',
        birthDate: '1980-02-03',
        sex: 'female',
      });
      const received: string[] = [];
      const ws = new WebSocket(`${secondUrl.replace('http', 'ws')}/ws`);
      ws.on('message', (raw) => {
        const message = JSON.parse(raw.toString()) as { type: string; event?: { type: string; patientId: string } };
        if (message.type === 'subscribed') received.push('subscribed');
        if (message.event?.patientId === patient.id) received.push(message.event.type);
      });
      await new Promise((resolve) => ws.once('open', resolve));
      ws.send(JSON.stringify({ type: 'auth', token }));
      ws.send(JSON.stringify({ type: 'subscribe', topic: `patient:${patient.id}` }));
      await expect.poll(() => received.includes('subscribed')).toBe(true);
      await client.patients.update(patient.id, {
        givenName: 'Fan',
        familyName: 'Outward',
        birthDate: '1980-02-03',
        sex: 'female',
      });
      await expect.poll(() => received.includes('patient.updated'), { timeout: 10_000 }).toBe(true);
      ws.close();
    } finally {
      await second.close();
    }
  }, 120_000);

  it('keeps answering cached reads (flagged stale) while OpenEMR is down, refuses writes, and recovers', async () => {
    const token = await tokenFor('demo-physician');
    const client = createCdssClient({ baseUrl, getToken: () => token });
    const patient = await client.patients.create({
      givenName: 'Otto',
      familyName: 'Outage',
      birthDate: '1960-01-01',
      sex: 'male',
    });
    expect((await client.patients.get(patient.id)).stale).toBe(false);

    await emulator.stop();
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // past the 1 s cache TTL
    const during = await client.patients.get(patient.id);
    expect(during).toMatchObject({ data: { id: patient.id, familyName: 'Outage' }, stale: true });
    const write = await client.patients
      .update(patient.id, { givenName: 'Otto', familyName: 'Changed', birthDate: '1960-01-01', sex: 'male' })
      .catch((e: unknown) => e);
    expect(write).toBeInstanceOf(CdssApiError);
    expect((write as CdssApiError).status).toBe(503);
    expect((await client.patients.get(patient.id)).data.familyName).toBe('Outage');

    emulator = await startEmulator();
    await expect
      .poll(async () => (await client.patients.get(patient.id)).stale, { timeout: 30_000, interval: 500 })
      .toBe(false);
    const updated = await client.patients.update(patient.id, {
      givenName: 'Otto',
      familyName: 'Restored',
      birthDate: '1960-01-01',
      sex: 'male',
    });
    expect(updated.familyName).toBe('Restored');
    expect((await client.patients.get(patient.id)).data.familyName).toBe('Restored');
  }, 120_000);
});
