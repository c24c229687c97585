/**
 * The worlds the recordings were made in, and the steps they skipped: what the recorded OpenEMR servers
 * held before each recording (an administrator, a facility, a first patient, their sequences), what the
 * numbered gaps did (a patient created here, a row updated there), and the administrator's actions the
 * recordings name (enabling a client, turning on system scopes, logging out). Test-only.
 */
import { SEED_ADMIN, blankOpenEmrPatientRow } from '@cdss/sandbox';
import { recording } from '../recordings.js';
import type { ParityHooks, ParityRun } from './run.js';

const text = (b: string | Buffer | undefined): string => (b === undefined ? '' : b.toString());

function patient(
  run: ParityRun,
  fields: Record<string, string | null> & { pid: string; uuid: string; fname: string; lname: string },
): void {
  const t = run.engine.store.tables;
  const now = '2026-12-06 18:29:36';
  t.patients.push({
    ...blankOpenEmrPatientRow(fields.pid, fields.pid, fields.uuid, now),
    pubpid: fields.pid,
    last_updated: now,
    created_by: '0',
    updated_by: null,
    ...fields,
  });
  run.engine.store.touch('patients');
}

/** The recorded servers' administrator, facility and sequences. */
function world(run: ParityRun, admin: string, counters: Record<string, number>): void {
  const t = run.engine.store.tables;
  const user = t.users.find((u) => u.username === SEED_ADMIN.username);
  if (user) user.uuid = admin;
  const facility = t.facilities[0];
  if (facility) {
    Object.assign(facility, {
      id: '3',
      uuid: 'a365edc2-69c9-4348-a642-8ac5ead47307',
      location_uuid: 'a365edc3-4294-4e3b-8d9a-de6a67c3bb4d',
      name: 'Your Clinic Name Here',
    });
  }
  Object.assign(t.counters, counters);
  run.engine.store.touch('users');
  run.engine.store.touch('facilities');
  run.engine.store.touch('counters');
}

const form = (req: { body: string | Buffer | undefined }): URLSearchParams => new URLSearchParams(text(req.body));

async function logout(run: ParityRun, origin: string, idToken: string): Promise<void> {
  await run.send(origin, {
    method: 'GET',
    path: '/oauth2/default/logout',
    query: new URLSearchParams({ id_token_hint: idToken }),
    headers: {},
    body: undefined,
  });
}

/** A page the recording did not keep, fetched for its CSRF token and session. */
async function get(run: ParityRun, origin: string, path: string, query: Record<string, string> = {}): Promise<void> {
  await run.send(origin, {
    method: 'GET',
    path,
    query: new URLSearchParams(query),
    headers: { cookie: '' },
    body: undefined,
  });
}

const O1 = 'http://127.0.0.1:18300';
const O2 = 'http://127.0.0.1:18301';

/** Sets up the 8.0.0 world and returns the hooks of its exchanges. */
export async function world80(run: ParityRun): Promise<Record<number, ParityHooks>> {
  world(run, 'a365edc2-f923-4d85-8440-7ae649d61119', {
    'patient_data.id': 7,
    'patient_data.pid': 1,
    'sequences.encounter': 3,
    'form_encounter.id': 3,
    'form_vitals.id': 0,
    'form_soap.id': 0,
    'forms.id': 3,
    'lists.id': 8,
    'users.id': 5,
    'documents.id': 4,
    'prescriptions.id': 0,
  });
  patient(run, {
    pid: '1',
    uuid: 'a365eddc-0a9b-40ac-8b1b-b68171a16736',
    title: 'Mr',
    fname: 'Probe',
    lname: 'Tester',
    DOB: '1980-01-02',
    sex: 'Male',
    street: '1 Main St',
    postal_code: '12345',
    city: 'Town',
    state: 'CA',
    country_code: 'US',
    phone_contact: '555-555-5555',
  });
  run.apiToken = await run.seedToken(O1, '8.0');
  const tok = (id: string): { access?: string; refresh?: string; id?: string } => run.tokens.get(`8.0.0/${id}`) ?? {};
  const t = run.engine.store.tables;
  const setForm = (req: { body: string | Buffer | undefined }, k: string, v: string): void => {
    const f = form(req);
    f.set(k, v);
    req.body = f.toString();
  };
  const recordedClient = (id: string): string =>
    (recording(`8.0.0/${id}`).requestBody as { __form: Record<string, string> }).__form['client_id'] ?? '';
  return {
    1: { after: (r, res) => void r.engine.enableClient(JSON.parse(text(res.body)).client_id as string) },
    6: { request: (_r, req) => setForm(req, 'refresh_token', tok('5').refresh ?? '') },
    7: { request: (_r, req) => setForm(req, 'refresh_token', tok('5').refresh ?? '') },
    8: { request: (_r, req) => setForm(req, 'token', tok('6').access ?? '') },
    9: { request: (_r, req) => setForm(req, 'password', 'wrong') },
    // Created with Zoë, unrecorded (its uuid is hers but one; pages and searches from file 15 on count it).
    12: {
      before: (r) => {
        patient(r, {
          pid: '3',
          uuid: 'a365f038-91ee-45aa-b967-f8abafd9b02d',
          fname: 'Testa',
          lname: 'Probeson',
          DOB: '1980-07-15',
          sex: 'Male',
        });
        t.counters['patient_data.pid'] = 3;
      },
    },
    35: {
      before: () => {
        const problem = t.lists.find((l) => l.id === '9');
        if (problem) problem.enddate = '2025-10-15';
      },
    },
    38: { before: () => void (t.counters['lists.id'] = 10) },
    40: { before: () => void (t.counters['lists.id'] = 12) },
    44: {
      before: () => {
        t.lists.push({
          id: '14',
          uuid: null,
          pid: '2',
          type: 'medication',
          title: 'Dexamethason',
          begdate: '2025-03-01 00:00:00',
          enddate: null,
          diagnosis: '',
          comments: null,
          activity: '1',
          outcome: '0',
          occurrence: '0',
          verification: '',
          reaction: '',
          severity_al: null,
          user: null,
          date: '2026-12-06 18:36:14',
        });
      },
    },
    46: {
      before: () => {
        t.prescriptions.push({
          id: '1',
          uuid: 'eaba6750-f1a3-11f1-8ba6-02fc00000001',
          pid: '2',
          encounter: null,
          provider_id: null,
          drug: 'Temozolomide 140 mg',
          rxnorm_drugcode: '37776',
          dosage: '1',
          quantity: '5',
          route: '',
          unit: '',
          interval: '',
          refills: '0',
          note: '',
          start_date: '2026-12-06',
          date_added: '2026-12-06 18:36:14',
          active: '1',
        });
      },
    },
    58: {
      before: (r) =>
        patient(r, {
          pid: '4',
          uuid: 'a365f03d-0262-46bc-9ec0-8d8cd002d6c6',
          fname: 'Åsa',
          lname: 'Ñúñez-Østergård',
          DOB: '1988-08-08',
          sex: 'Female',
        }),
    },
    60: { before: (r) => logout(r, O1, tok('5').id ?? '') },
    61: { before: async (r) => void (r.apiToken = await r.seedToken(O2, '8.0')) },
    70: { request: (r, req) => void req.query.set('code_challenge', r.pkce.challenge) },
    78: {
      before: () => {
        t.vitals.push({
          id: '2',
          uuid: 'a365f712-9c7d-4722-a285-0ed621c9ccec',
          fid: '9',
          pid: '2',
          eid: '4',
          date: '2026-12-06 18:55:22',
          user: 'admin',
          groupname: 'Default',
          authorized: '1',
          activity: '1',
          bps: '132',
          bpd: '84',
          weight: '152',
          height: '66',
          temperature: '98.4',
          temp_method: null,
          pulse: '76',
          respiration: '16',
          note: 'synthetic follow-up vitals',
          BMI: null,
          BMI_status: null,
          waist_circ: null,
          head_circ: null,
          oxygen_saturation: '97',
        });
      },
      request: (_r, req) => void (req.headers['authorization'] = `Bearer ${tok('77').access ?? ''}`),
    },
    82: {
      before: (r) => get(r, O2, '/interface/patient_file/summary/demographics.php', { set_pid: '2' }),
      request: (r, req) => void req.query.set('csrf_token', r.csrf),
    },
    83: {
      request: (r, req) => {
        req.query.set('launch', r.launch);
        req.query.set('code_challenge', r.pkce.challenge);
      },
    },
    84: { before: (r) => get(r, O2, '/oauth2/default/provider/login') },
    85: { before: (r) => get(r, O2, '/oauth2/default/scope-authorize-confirm') },
    87: {
      before: (r) => void r.engine.skipEhrLaunchAuthorization(r.id(recordedClient('86'))),
      request: (r, req) => {
        req.query.set('launch', r.launch);
        req.query.set('code_challenge', r.pkce.challenge);
      },
    },
    88: {
      request: (r, req) => {
        req.query.set('launch', r.launch);
        req.query.set('code_challenge', r.pkce.challenge);
      },
    },
    90: {
      before: (r) => r.engine.setGlobal('rest_system_scopes_api', '1'),
      request: (r, req) => {
        const body = JSON.parse(text(req.body)) as Record<string, unknown>;
        body['jwks'] = { keys: [r.backendKey.jwk] };
        req.body = JSON.stringify(body);
      },
    },
    91: {
      request: async (r, req) =>
        setForm(req, 'client_assertion', await r.assertion(r.id(BACKEND), { aud: `${O2}/oauth2/default/token` })),
    },
    92: {
      before: (r) => void r.engine.enableClient(r.id(BACKEND)),
      request: async (r, req) => {
        const assertion = await r.assertion(r.id(BACKEND), { aud: `${O2}/oauth2/default/token` });
        r.assertions.set('92', assertion);
        setForm(req, 'client_assertion', assertion);
      },
    },
    93: { request: (_r, req) => void (req.headers['authorization'] = `Bearer ${tok('92').access ?? ''}`) },
    94: {
      request: async (r, req) =>
        setForm(req, 'client_assertion', await r.assertion(r.id(BACKEND), { aud: `${O2}/apis/default/fhir` })),
    },
    95: {
      request: async (r, req) => {
        const now = Math.floor(Date.now() / 1000);
        setForm(
          req,
          'client_assertion',
          await r.assertion(r.id(BACKEND), { aud: `${O2}/oauth2/default/token`, iat: now - 240, exp: now - 120 }),
        );
      },
    },
    96: { request: (r, req) => setForm(req, 'client_assertion', r.assertions.get('92') ?? '') },
  };
}

const BACKEND = 'G_d60aDw7PoCMdVekUHaezq1_n3TEb9i3qgjuQlYLmE';

/** Sets up the 7.0.1 world and returns the hooks of its exchanges. */
export async function world70(run: ParityRun): Promise<Record<number, ParityHooks>> {
  world(run, 'a365f33f-d3fe-4511-874c-c7a48565a7dc', {
    'patient_data.id': 0,
    'patient_data.pid': 0,
    'sequences.encounter': 5,
    'form_encounter.id': 0,
    'form_vitals.id': 6,
    'form_soap.id': 0,
    'forms.id': 1,
    'lists.id': 0,
  });
  const O = 'http://127.0.0.1:18307';
  run.apiToken = await run.seedToken(O, '7.0');
  const tok = (id: string): { access?: string; refresh?: string; id?: string } => run.tokens.get(`7.0.1/${id}`) ?? {};
  const setForm = (req: { body: string | Buffer | undefined }, k: string, v: string): void => {
    const f = form(req);
    f.set(k, v);
    req.body = f.toString();
  };
  return {
    2: { after: (r, res) => void r.engine.enableClient(JSON.parse(text(res.body)).client_id as string) },
    // Three more synthetic patients, created with Zoë and unrecorded: the unpaged list of file 13 has them.
    13: {
      before: (r) => {
        for (const [pid, uuid, fname, lname] of [
          ['2', 'a365f453-d57a-40f5-9094-44d69c37aa1f', 'Anna', 'Synthetic-One'],
          ['3', 'a365f453-de65-4987-8509-c02bb89405f1', 'Ben', 'Synthetic-Two'],
          ['4', 'a365f453-ec8c-4b75-b3a7-92dc1f92687b', 'Cleo', 'Synthetic-Three'],
        ] as const)
          patient(r, { pid, uuid, fname, lname, DOB: '1990-01-01', sex: 'Male', created_by: '1', updated_by: '1' });
      },
    },
    6: { request: (_r, req) => setForm(req, 'refresh_token', tok('4').refresh ?? '') },
    7: { request: (_r, req) => setForm(req, 'refresh_token', tok('4').refresh ?? '') },
    8: { request: (_r, req) => setForm(req, 'token', tok('6').access ?? '') },
    41: { request: (_r, req) => void (req.headers['authorization'] = `Bearer ${tok('4').access ?? ''}`) },
    42: { request: (_r, req) => void (req.headers['authorization'] = 'Bearer not-a-token-this-server-signed') },
    43: {
      before: async (r) => {
        r.apiToken = await r.seedToken(O, '7.0');
        const row = r.engine.store.tables.tokens.find((x) => x.token === r.apiToken);
        if (row) row.expires_at = Date.now() - 1000;
      },
    },
    44: {
      before: async (r) => {
        r.apiToken = await r.seedToken(O, '7.0');
        await logout(r, O, tok('4').id ?? '');
      },
    },
  };
}
