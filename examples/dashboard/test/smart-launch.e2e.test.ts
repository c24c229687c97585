/**
 * SMART App Launch in a real browser: the OpenEMR emulator launches the dashboard from a patient's chart (its
 * "SMART Enabled Apps" launcher, as OpenEMR 8.0.0 does it, recorded files 80–88), the dashboard (fhirclient) goes
 * through OpenEMR's login and scope approval with PKCE, trades the id_token for a CDSS session, and lands on that
 * patient as the EHR user; then a standalone launch, where OpenEMR's patient picker chooses the patient.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenEmrEmulator, SEED_ADMIN } from '@cdss/sandbox';
import { loadConfig } from '../../reference-server/src/config.js';
import { createLogger } from '../../reference-server/src/logger.js';
import { composeServer, type ComposedServer } from '../../reference-server/src/compose.js';
import { openEmrEmulatorEnv } from '../../reference-server/test/upstreams.js';
import { chromiumArgs, chromiumPath, dashboardDir, ensureBuild, freePort } from './support.js';
import { listenOnFreePort } from '@cdss/core/testing';

describe.skipIf(!chromiumPath)('SMART App Launch: OpenEMR launches the dashboard', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-smart-e2e-'));
  let emulator: Server;
  let emulatorUrl: string;
  let composed: ComposedServer;
  let cdssUrl: string;
  let browser: Browser;
  let patient: { pid: string; uuid: string; fname: string; lname: string };

  beforeAll(async () => {
    ensureBuild();
    const router = createOpenEmrEmulator({ dataDir: join(dataDir, 'openemr'), seed: true });
    emulator = createServer(express().use(router));
    await listenOnFreePort(emulator);
    emulatorUrl = `http://127.0.0.1:${(emulator.address() as AddressInfo).port}`;
    const cdssPort = await freePort();
    cdssUrl = `http://127.0.0.1:${cdssPort}`;

    // The dashboard registered as a public SMART app (no token_endpoint_auth_method: OpenEMR refuses "none"),
    // then enabled by an administrator (a public client asking for launch starts disabled).
    const registration = await fetch(`${emulatorUrl}/oauth2/default/registration`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        application_type: 'public',
        client_name: 'CDSS dashboard',
        redirect_uris: [`${cdssUrl}/smart/callback`],
        initiate_login_uri: `${cdssUrl}/smart/launch`,
        scope: 'openid fhirUser launch launch/patient patient/Patient.rs',
      }),
    });
    expect(registration.status).toBe(200);
    const { client_id: clientId } = (await registration.json()) as { client_id: string };
    expect(router.engine.enableClient(clientId)).toBe(true);
    const row = router.engine.store.tables.patients[0]!;
    patient = { pid: String(row.pid), uuid: String(row.uuid), fname: String(row.fname), lname: String(row.lname) };

    composed = await composeServer(
      loadConfig({
        CDSS_DATA_DIR: join(dataDir, 'cdss'),
        CDSS_LOG_LEVEL: 'warn',
        CDSS_WORKER: 'off',
        CDSS_AUTO_ANALYSIS: 'false',
        CDSS_SANDBOX_STUDIES: '0',
        CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
        CDSS_DASHBOARD_DIR: join(dashboardDir, 'dist'),
        CDSS_RATE_LIMIT_PER_MINUTE: '10000',
        ...openEmrEmulatorEnv(emulatorUrl),
        CDSS_SMART_CLIENT_ID: clientId,
      }),
      createLogger('warn'),
      'test',
    );
    await composed.server.listen(cdssPort, '127.0.0.1');
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await composed?.close();
    await new Promise((ok) => emulator?.close(ok));
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** OpenEMR's OAuth login page, then its scope approval (and, standalone, its patient picker first). */
  async function authorize(page: Page, pick?: string): Promise<void> {
    await page.waitForURL(/\/oauth2\/default\/provider\/login/);
    await page.fill('input[name="username"]', SEED_ADMIN.username);
    await page.fill('input[name="password"]', SEED_ADMIN.password);
    await page.click('button[name="user_role"][value="api"]');
    if (pick) {
      await page.waitForURL(/patient-select/);
      await page.click(`button[name="patient_id"][value="${pick}"]`);
    }
    await page.waitForSelector('#authorize-btn');
    await page.click('#authorize-btn');
  }

  it('EHR launch from the patient’s chart lands on that patient, signed in as the OpenEMR user', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // The clinician is logged in to OpenEMR and has the patient open.
    const login = await context.request.post(`${emulatorUrl}/interface/main/main_screen.php?auth=login&site=default`, {
      form: { authUser: SEED_ADMIN.username, clearPass: SEED_ADMIN.password, languageChoice: '1' },
      maxRedirects: 0,
    });
    expect(login.status()).toBe(302);
    await page.goto(`${emulatorUrl}/interface/patient_file/summary/demographics.php?set_pid=${patient.pid}`);
    await page.click('a.smart-launch');
    await page.waitForURL(/\/smart\/launch\?launch=/);
    await authorize(page);
    await page.waitForURL(`${cdssUrl}/patients/${patient.uuid}`, { timeout: 60_000 });
    await page.getByRole('heading', { level: 1, name: new RegExp(`${patient.lname}, ${patient.fname}`) }).waitFor();
    // The session is the OpenEMR user's (fhirUser Person/…), with the configured default role.
    expect(await page.locator('.who').textContent()).toContain('physician');
    const session = JSON.parse((await page.evaluate(() => sessionStorage.getItem('cdss.session'))) ?? '{}') as {
      user?: { id?: string };
    };
    expect(session.user?.id).toMatch(/^Person\/[0-9a-f-]{36}$/);
    expect(errors).toEqual([]);
    await context.close();
  }, 120_000);

  it('standalone launch: OpenEMR’s patient picker chooses the patient', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${cdssUrl}/smart/launch`);
    await authorize(page, patient.uuid);
    await page.waitForURL(`${cdssUrl}/patients/${patient.uuid}`, { timeout: 60_000 });
    await page.getByRole('heading', { level: 1, name: new RegExp(`${patient.lname}, ${patient.fname}`) }).waitFor();
    await context.close();
  }, 120_000);
});
