import { OpenEmrEngine, SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CDSS_SCOPES, createOpenEmrClient } from '../src/index.js';
import { createOpenEmrHandlers } from '../src/testing.js';

describe('@cdss/openemr-client/testing (msw handlers backed by the emulator)', () => {
  const calls: string[] = [];
  const engine = new OpenEmrEngine({ version: '8' });
  const server = setupServer(
    ...createOpenEmrHandlers({
      baseUrl: 'https://emr.test',
      emulator: engine,
      onRequest: (c) => calls.push(`${c.method} ${c.path} ${c.status}`),
    }),
  );
  beforeAll(() => server.listen({ onUnhandledFrame: 'error' }));
  afterAll(() => server.close());

  it('serves the client without a server: login, search, write, FHIR', async () => {
    const emr = createOpenEmrClient({
      baseUrl: 'https://emr.test',
      auth: {
        kind: 'password',
        clientId: SEED_CLIENT.clientId,
        clientSecret: SEED_CLIENT.clientSecret,
        username: SEED_ADMIN.username,
        password: SEED_ADMIN.password,
        scope: CDSS_SCOPES,
      },
    });
    const [maria] = await emr.patients.list({ lname: 'Rossi' });
    expect(maria?.fname).toBe('Maria');
    const { uuid } = await emr.medicalProblems.create(maria?.uuid ?? '', {
      title: 'Seizure disorder',
      begdate: '2024-01-10',
    });
    expect(engine.store.tables.lists.some((l) => l.uuid === uuid)).toBe(true);
    const bundle = await emr.fhir.search('Condition', { patient: maria?.uuid ?? '' });
    expect(bundle.entry?.length).toBeGreaterThan(1);
    expect(calls[0]).toBe('POST /oauth2/default/token 200');
    expect(calls.every((c) => !c.includes('Bearer'))).toBe(true);
  });
});
