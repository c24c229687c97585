/**
 * The OpenEMR adapter's patient search and duplicate check, against the OpenEMR emulator over real HTTP (the emulator
 * folds case and accents in its contains-match as OpenEMR's MySQL collation does).
 */
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CDSS_SCOPES, createOpenEmrClient } from '@cdss/openemr-client';
import { createOpenEmrEmulator, SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import type { PatientRecords } from '../domain/ports.js';
import { foldName, openEmrRecords } from './openemr.js';
import { freePort } from '@cdss/core/testing';

let server: Server;
let records: PatientRecords;

beforeAll(async () => {
  const app = express().use(createOpenEmrEmulator({ version: '8', seed: true }));
  const listenPort = await freePort();
  server = await new Promise<Server>((resolve) => {
    const started = app.listen(listenPort, '127.0.0.1', () => resolve(started));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const client = createOpenEmrClient({
    baseUrl: `http://127.0.0.1:${port}`,
    auth: {
      kind: 'password',
      clientId: SEED_CLIENT.clientId,
      clientSecret: SEED_CLIENT.clientSecret,
      username: SEED_ADMIN.username,
      password: SEED_ADMIN.password,
      scope: CDSS_SCOPES,
    },
  });
  records = openEmrRecords(client);
  await records.create({ givenName: 'Zoë', familyName: 'Müller', birthDate: '1971-02-03', sex: 'female' });
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

const names = async (q: string): Promise<string[]> =>
  (await records.search({ q, limit: 20 })).items.map((p) => `${p.givenName} ${p.familyName}`);

describe('patient search', () => {
  it('ignores accents and case in both directions', async () => {
    expect(await names('muller')).toEqual(['Zoë Müller']);
    expect(await names('MÜLLER')).toEqual(['Zoë Müller']);
    expect(await names('zoe')).toEqual(['Zoë Müller']);
  });

  it('matches given and family names in any order and form', async () => {
    for (const q of ['maria rossi', 'Rossi, Maria', 'rossi maria', '  MARIA   ROSSI ', 'ross mar'])
      expect(await names(q), q).toEqual(['Maria Rossi']);
    expect(await names('maria smith')).toEqual([]);
    expect(await names('zoe muller')).toEqual(['Zoë Müller']);
  });

  it('folds names as a case- and accent-insensitive collation does', () => {
    expect(foldName('  Zoë   MÜLLER-Łukasz ')).toBe('zoe muller-łukasz');
  });
});

describe('duplicate check', () => {
  it('finds an existing patient with the same names (any accents or case) and birth date', async () => {
    const [maria] = (await records.search({ q: 'maria rossi', limit: 1 })).items;
    expect(maria).toBeDefined();
    const found = await records.duplicates({
      givenName: 'MARIA',
      familyName: 'rossi',
      birthDate: maria!.birthDate,
      sex: 'female',
    });
    expect(found.map((p) => p.id)).toEqual([maria!.id]);
    expect(
      await records.duplicates({ givenName: 'Zoe', familyName: 'Muller', birthDate: '1971-02-03', sex: 'female' }),
    ).toHaveLength(1);
    expect(
      await records.duplicates({ givenName: 'Maria', familyName: 'Rossi', birthDate: '1901-01-01', sex: 'female' }),
    ).toEqual([]);
  });
});
