/**
 * The core UI stand-ins a person goes through before an EHR launch from the emulator: the web login form, the page
 * after the login (the patients), and the patient dashboard with its SMART apps card.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenEmrEmulator, SEED_ADMIN } from '../index.js';
import { listenOnFreePort } from '@cdss/core/testing';

describe('OpenEMR emulator: web login, patient finder, dashboard', () => {
  const router = createOpenEmrEmulator({ seed: true });
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer(express().use(router));
    await listenOnFreePort(server);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
  });

  const get = (path: string, cookie?: string): Promise<Response> =>
    fetch(`${base}${path}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });

  it('sends a visitor without a session to the login form, which posts what OpenEMR’s does', async () => {
    const main = await get('/interface/main/tabs/main.php');
    expect(main.status).toBe(302);
    expect(main.headers.get('location')).toBe('/interface/login/login.php?site=default');
    const form = await (await get('/interface/login/login.php?site=default')).text();
    expect(form).toContain('action="/interface/main/main_screen.php?auth=login&amp;site=default"');
    for (const field of ['new_login_session_management', 'languageChoice', 'authUser', 'clearPass'])
      expect(form).toContain(`name="${field}"`);
    expect(await (await get('/interface/login/login.php?site=default&w')).text()).toContain('Invalid');
  });

  it('after the login lists the patients, each opening its dashboard with the SMART apps card', async () => {
    const login = await fetch(`${base}/interface/main/main_screen.php?auth=login&site=default`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        new_login_session_management: '1',
        languageChoice: '1',
        authUser: SEED_ADMIN.username,
        clearPass: SEED_ADMIN.password,
      }),
    });
    expect(login.status).toBe(302);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const main = await get(login.headers.get('location')!, cookie);
    expect(main.status).toBe(200);
    const html = await main.text();
    const first = router.engine.store.tables.patients[0]!;
    expect(html).toContain(`demographics.php?set_pid=${first.pid}`);
    expect(html).toContain(`${first.lname}, ${first.fname}`);
    const dashboard = await get(`/interface/patient_file/summary/demographics.php?set_pid=${first.pid}`, cookie);
    expect(await dashboard.text()).toContain('SMART Enabled Apps');
  });
});
