/**
 * Demo data for the OpenEMR emulator: a facility, an administrator account for the password grant,
 * neuro-oncology practitioners, and patients with brain-tumour histories (glioblastoma, astrocytoma,
 * oligodendroglioma, meningioma, metastasis, medulloblastoma) with encounters, problems, allergies,
 * medications, prescriptions, vitals, SOAP notes, procedures and appointments. Every patient has both a
 * numeric `pid` and a `uuid`; every encounter both an `eid` and a `euuid`. UUIDs are derived from stable
 * names so that seed data has the same identifiers on every machine. All people are fictional.
 */
import { makeUuid } from './context.js';
import { hashPassword } from './oauth.js';
import { blankListRow, blankPatientRow, blankUserRow } from './rows.js';
import type { OpenEmrStore } from './store.js';
import type { OpenEmrVersion } from './context.js';
import type { EncounterRow, ListRow, PatientRow, UserRow } from './types.js';

/** The seeded API user for the password grant. */
export const SEED_ADMIN = { username: 'admin', password: 'pass' } as const;

/**
 * The scopes the seeded client is registered for: what the CDSS uses (standard API, FHIR, documents), in
 * the release's syntax (7.0 knows only SMART v1 `.read`/`.write`).
 */
function seedClientScopes(version: OpenEmrVersion): string[] {
  const standard: [string, string][] = [
    ['patient', 'crus'],
    ['encounter', 'crus'],
    ['vital', 'crus'],
    ['soap_note', 'crus'],
    ['medical_problem', 'cruds'],
    ['allergy', 'cruds'],
    ['medication', 'cruds'],
    ['prescription', 'crds'],
    ['procedure', 'rs'],
    ['appointment', 'cruds'],
    ['practitioner', 'crus'],
    ['document', 'crs'],
  ];
  const fhir: [string, string][] = [
    ['Patient', 'crus'],
    ['Encounter', 'rs'],
    ['Condition', 'rs'],
    ['AllergyIntolerance', 'rs'],
    ['MedicationRequest', 'rs'],
    ['Observation', 'rs'],
    ['Practitioner', 'crus'],
    ['Organization', 'crus'],
    ['DocumentReference', 'rs'],
  ];
  const v1 = (letters: string): string[] => [
    ...(/[rs]/.test(letters) ? ['read'] : []),
    ...(/[cud]/.test(letters) ? ['write'] : []),
  ];
  const scopes = ['openid', 'offline_access', 'api:oemr', 'api:fhir', 'fhirUser', 'user/Binary.read'];
  for (const [r, l] of [...standard, ...fhir]) {
    if (version === '7.0') for (const p of v1(l)) scopes.push(`user/${r}.${p}`);
    else scopes.push(`user/${r}.${l}`);
  }
  return scopes;
}

/** The seeded, enabled confidential API client, registered for every scope the CDSS uses. */
export const SEED_CLIENT = {
  clientId: 'cdss-sandbox-client',
  clientSecret: 'cdss-sandbox-secret-change-me',
  redirectUri: 'http://127.0.0.1/callback',
} as const;

interface SeedPatient {
  key: string;
  title: string;
  fname: string;
  lname: string;
  DOB: string;
  sex: 'Male' | 'Female';
  city: string;
  problems: { title: string; diagnosis: string; begdate: string; enddate?: string }[];
  allergies: { title: string; reaction: string; severity: string }[];
  medications: { title: string; diagnosis: string; begdate: string }[];
  prescriptions: {
    drug: string;
    rxnorm: string;
    dosage: string;
    unit: string;
    route: string;
    interval: string;
    start: string;
  }[];
  encounters: {
    date: string;
    reason: string;
    vitals?: Partial<
      Record<
        'bps' | 'bpd' | 'weight' | 'height' | 'temperature' | 'pulse' | 'respiration' | 'oxygen_saturation',
        string
      >
    >;
    soap?: [string, string, string, string];
  }[];
  procedures: { date: string; code: string; name: string; hx: string }[];
}

const PATIENTS: SeedPatient[] = [
  {
    key: 'maria-rossi',
    title: 'Mrs.',
    fname: 'Maria',
    lname: 'Rossi',
    DOB: '1968-03-14',
    sex: 'Female',
    city: 'Springfield',
    problems: [
      {
        title: 'Glioblastoma, IDH-wildtype, WHO grade 4, right temporal lobe',
        diagnosis: 'ICD10:C71.2',
        begdate: '2024-01-22',
      },
      { title: 'Symptomatic epilepsy secondary to brain tumour', diagnosis: 'ICD10:G40.909', begdate: '2024-01-10' },
      { title: 'Cerebral oedema', diagnosis: 'ICD10:G93.6', begdate: '2024-01-10' },
    ],
    allergies: [{ title: 'Penicillin', reaction: 'hives', severity: 'moderate' }],
    medications: [
      { title: 'Temozolomide', diagnosis: 'RXCUI:72928', begdate: '2024-03-01 00:00:00' },
      { title: 'Levetiracetam', diagnosis: 'RXCUI:114477', begdate: '2024-01-10 00:00:00' },
      { title: 'Dexamethasone', diagnosis: 'RXCUI:3264', begdate: '2024-01-10 00:00:00' },
    ],
    prescriptions: [
      {
        drug: 'Temozolomide 140 MG Oral Capsule',
        rxnorm: '406115',
        dosage: '75',
        unit: 'mg/m2',
        route: 'PO',
        interval: 'daily',
        start: '2024-03-01',
      },
      {
        drug: 'Levetiracetam 500 MG Oral Tablet',
        rxnorm: '311289',
        dosage: '500',
        unit: 'mg',
        route: 'PO',
        interval: 'bid',
        start: '2024-01-10',
      },
    ],
    encounters: [
      {
        date: '2024-01-10 09:30:00',
        reason: 'New-onset seizure; MRI brain with and without contrast',
        vitals: {
          bps: '138',
          bpd: '86',
          weight: '150',
          height: '65',
          temperature: '98.4',
          pulse: '88',
          respiration: '16',
          oxygen_saturation: '98',
        },
        soap: [
          'Two focal seizures with impaired awareness this week.',
          'Left homonymous quadrantanopia. MRI: ring-enhancing right temporal mass, 4.1 cm.',
          'High-grade glioma suspected.',
          'Dexamethasone, levetiracetam; neurosurgery referral.',
        ],
      },
      { date: '2024-01-22 08:00:00', reason: 'Gross total resection, right temporal craniotomy' },
      {
        date: '2024-03-01 10:00:00',
        reason: 'Neuro-oncology: start chemoradiation (Stupp protocol)',
        vitals: {
          bps: '126',
          bpd: '80',
          weight: '146',
          height: '65',
          temperature: '98.1',
          pulse: '76',
          respiration: '14',
          oxygen_saturation: '99',
        },
      },
    ],
    procedures: [
      { date: '2024-01-10', code: '70553', name: 'MRI brain without and with contrast', hx: 'New-onset seizure' },
    ],
  },
  {
    key: 'james-okafor',
    title: 'Mr.',
    fname: 'James',
    lname: 'Okafor',
    DOB: '1975-07-02',
    sex: 'Male',
    city: 'Riverton',
    problems: [
      {
        title: 'Oligodendroglioma, IDH-mutant and 1p/19q-codeleted, WHO grade 2, left frontal',
        diagnosis: 'ICD10:C71.1',
        begdate: '2021-05-18',
      },
      { title: 'Focal epilepsy', diagnosis: 'ICD10:G40.109', begdate: '2021-05-01' },
    ],
    allergies: [],
    medications: [{ title: 'Lamotrigine', diagnosis: 'RXCUI:28439', begdate: '2021-05-01 00:00:00' }],
    prescriptions: [
      {
        drug: 'Lamotrigine 100 MG Oral Tablet',
        rxnorm: '198429',
        dosage: '100',
        unit: 'mg',
        route: 'PO',
        interval: 'bid',
        start: '2021-05-01',
      },
    ],
    encounters: [
      {
        date: '2021-05-01 14:00:00',
        reason: 'First seizure; MRI shows non-enhancing left frontal lesion',
        vitals: { bps: '124', bpd: '78', weight: '182', height: '71', pulse: '70' },
      },
      {
        date: '2025-06-12 11:00:00',
        reason: 'Annual surveillance MRI: stable',
        vitals: { bps: '122', bpd: '76', weight: '185', height: '71', pulse: '68' },
      },
    ],
    procedures: [
      {
        date: '2025-06-12',
        code: '70553',
        name: 'MRI brain without and with contrast',
        hx: 'Surveillance, oligodendroglioma',
      },
    ],
  },
  {
    key: 'sofia-lind',
    title: 'Ms.',
    fname: 'Sofia',
    lname: 'Lind',
    DOB: '1990-11-23',
    sex: 'Female',
    city: 'Lakeside',
    problems: [
      { title: 'Meningioma, WHO grade 1, left parasagittal', diagnosis: 'ICD10:D32.0', begdate: '2023-09-05' },
    ],
    allergies: [{ title: 'Iodinated contrast media', reaction: 'urticaria', severity: 'mild' }],
    medications: [],
    prescriptions: [],
    encounters: [
      {
        date: '2023-09-05 09:00:00',
        reason: 'Headaches; incidental dural-based mass on MRI',
        vitals: { bps: '112', bpd: '70', weight: '130', height: '66', pulse: '72' },
      },
    ],
    procedures: [
      { date: '2023-09-05', code: '70553', name: 'MRI brain without and with contrast', hx: 'Chronic headache' },
    ],
  },
  {
    key: 'henrik-berg',
    title: 'Mr.',
    fname: 'Henrik',
    lname: 'Berg',
    DOB: '1959-02-08',
    sex: 'Male',
    city: 'Springfield',
    problems: [
      {
        title: 'Secondary malignant neoplasm of brain (two lesions)',
        diagnosis: 'ICD10:C79.31',
        begdate: '2025-02-14',
      },
      { title: 'Adenocarcinoma of left lung', diagnosis: 'ICD10:C34.92', begdate: '2024-10-30' },
    ],
    allergies: [{ title: 'Sulfonamides', reaction: 'rash', severity: 'mild' }],
    medications: [{ title: 'Osimertinib', diagnosis: 'RXCUI:1721560', begdate: '2024-11-15 00:00:00' }],
    prescriptions: [
      {
        drug: 'Osimertinib 80 MG Oral Tablet',
        rxnorm: '1721565',
        dosage: '80',
        unit: 'mg',
        route: 'PO',
        interval: 'daily',
        start: '2024-11-15',
      },
    ],
    encounters: [
      {
        date: '2025-02-14 13:15:00',
        reason: 'Staging MRI brain; stereotactic radiosurgery planning',
        vitals: { bps: '142', bpd: '88', weight: '171', height: '70', pulse: '84', oxygen_saturation: '95' },
      },
    ],
    procedures: [
      { date: '2025-02-14', code: '70553', name: 'MRI brain without and with contrast', hx: 'Staging, NSCLC' },
    ],
  },
  {
    key: 'aiko-tanaka',
    title: 'Dr.',
    fname: 'Aiko',
    lname: 'Tanaka',
    DOB: '1983-06-30',
    sex: 'Female',
    city: 'Riverton',
    problems: [
      { title: 'Astrocytoma, IDH-mutant, WHO grade 3, right frontal', diagnosis: 'ICD10:C71.1', begdate: '2022-08-09' },
    ],
    allergies: [],
    medications: [{ title: 'Vorasidenib', diagnosis: 'RXCUI:2680286', begdate: '2025-01-06 00:00:00' }],
    prescriptions: [],
    encounters: [
      {
        date: '2022-08-09 10:45:00',
        reason: 'Post-operative MRI: residual T2/FLAIR abnormality',
        vitals: { bps: '118', bpd: '74', weight: '121', height: '63', pulse: '66' },
      },
    ],
    procedures: [],
  },
  {
    key: 'liam-walsh',
    title: '',
    fname: 'Liam',
    lname: 'Walsh',
    DOB: '2013-04-17',
    sex: 'Male',
    city: 'Lakeside',
    problems: [
      { title: 'Medulloblastoma, SHH-activated, posterior fossa', diagnosis: 'ICD10:C71.6', begdate: '2023-02-20' },
      { title: 'Obstructive hydrocephalus', diagnosis: 'ICD10:G91.1', begdate: '2023-02-18', enddate: '2023-03-10' },
    ],
    allergies: [],
    medications: [],
    prescriptions: [],
    encounters: [
      {
        date: '2023-02-18 22:10:00',
        reason: 'Morning vomiting and ataxia; emergency MRI',
        vitals: { bps: '104', bpd: '64', weight: '66', height: '52', temperature: '98.9', pulse: '96' },
      },
    ],
    procedures: [
      { date: '2023-02-18', code: '70553', name: 'MRI brain without and with contrast', hx: 'Ataxia, vomiting' },
    ],
  },
];

/**
 * Fills an empty store with the demo data and marks the tables changed (the caller flushes).
 * @param store - the store (must be empty)
 * @param options - `extraPatients` adds that many plain generated patients (for paging tests and benchmarks)
 */
export function seedOpenEmr(
  store: OpenEmrStore,
  options: { extraPatients?: number; version?: OpenEmrVersion } = {},
): void {
  const t = store.tables;
  const now = '2025-11-01 08:00:00';
  const facility = {
    id: String(store.nextId('facility.id', 3)),
    uuid: makeUuid('facility:main'),
    name: 'Springfield Neuro-Oncology Centre',
    phone: '555-0100',
    street: '1 Hospital Way',
    city: 'Springfield',
    state: 'IL',
    postal_code: '62701',
    country_code: 'US',
    facility_npi: '1234567893',
  };
  t.facilities.push(facility);
  store.touch('facilities');
  const user = (key: string, fields: Partial<UserRow>): UserRow => {
    const row: UserRow = {
      ...blankUserRow(String(store.nextId('users.id')), makeUuid(`user:${key}`)),
      facility_id: facility.id,
      ...fields,
    };
    t.users.push(row);
    return row;
  };
  const admin = user('admin', {
    username: SEED_ADMIN.username,
    password: hashPassword(SEED_ADMIN.password),
    fname: 'Administrator',
    lname: 'Administrator',
  });
  const oncologist = user('dr-chen', {
    username: 'dchen',
    title: 'Dr.',
    fname: 'Daniel',
    lname: 'Chen',
    npi: '1122334455',
    specialty: 'Neuro-oncology',
    email: 'd.chen@example.org',
  });
  user('dr-amari', {
    username: 'aamari',
    title: 'Dr.',
    fname: 'Amara',
    lname: 'Amari',
    npi: '2233445566',
    specialty: 'Neuroradiology',
    email: 'a.amari@example.org',
  });
  store.touch('users');

  t.clients.push({
    client_id: SEED_CLIENT.clientId,
    client_secret: SEED_CLIENT.clientSecret,
    client_name: 'CDSS sandbox',
    client_role: 'user',
    is_confidential: true,
    is_enabled: true,
    redirect_uris: [SEED_CLIENT.redirectUri],
    grant_types: ['password', 'refresh_token', 'authorization_code'],
    scope: seedClientScopes(options.version ?? '8.0'),
    token_endpoint_auth_method: 'client_secret_post',
    jwks: null,
    jwks_uri: null,
    registration_access_token: 'seed',
    registration_client_uri_path: 'seed',
    dsi_type: 'predictive',
    contacts: [],
    created: 1_700_000_000,
  });
  store.touch('clients');

  const addPatient = (key: string, fields: Partial<PatientRow>): PatientRow => {
    const id = store.nextId('patient_data.id');
    const pid = store.nextId('patient_data.pid');
    const row: PatientRow = {
      ...blankPatientRow(String(id), String(pid), makeUuid(`patient:${key}`), now),
      pubpid: String(pid),
      country_code: 'US',
      providerID: oncologist.id,
      ...fields,
    };
    t.patients.push(row);
    return row;
  };
  const list = (type: ListRow['type'], pid: string, key: string, fields: Partial<ListRow>): void => {
    t.lists.push({
      ...blankListRow({
        id: String(store.nextId('lists.id')),
        uuid: makeUuid(`list:${key}`),
        pid,
        type,
        user: admin.username,
        date: now,
      }),
      ...fields,
    });
  };

  for (const p of PATIENTS) {
    const row = addPatient(p.key, {
      title: p.title,
      fname: p.fname,
      lname: p.lname,
      DOB: p.DOB,
      sex: p.sex,
      city: p.city,
      state: 'IL',
      street: `${10 + t.patients.length} Elm Street`,
      postal_code: '62701',
      phone_home: '555-0142',
    });
    p.problems.forEach((pr, i) =>
      list('medical_problem', row.pid, `${p.key}:problem:${i}`, {
        title: pr.title,
        diagnosis: pr.diagnosis,
        begdate: pr.begdate,
        enddate: pr.enddate ?? null,
      }),
    );
    p.allergies.forEach((a, i) =>
      list('allergy', row.pid, `${p.key}:allergy:${i}`, {
        title: a.title,
        reaction: a.reaction,
        severity_al: a.severity,
      }),
    );
    p.medications.forEach((m, i) =>
      list('medication', row.pid, `${p.key}:med:${i}`, { title: m.title, diagnosis: m.diagnosis, begdate: m.begdate }),
    );
    p.prescriptions.forEach((rx, i) => {
      t.prescriptions.push({
        id: String(store.nextId('prescriptions.id')),
        uuid: makeUuid(`rx:${p.key}:${i}`),
        pid: row.pid,
        encounter: null,
        provider_id: oncologist.id,
        drug: rx.drug,
        rxnorm_drugcode: rx.rxnorm,
        dosage: rx.dosage,
        quantity: '30',
        route: rx.route,
        unit: rx.unit,
        interval: rx.interval,
        refills: '2',
        note: '',
        start_date: rx.start,
        date_added: `${rx.start} 09:00:00`,
        active: '1',
      });
    });
    p.encounters.forEach((e, i) => {
      const enc: EncounterRow = {
        id: String(store.nextId('form_encounter.id')),
        uuid: makeUuid(`enc:${p.key}:${i}`),
        encounter: String(store.nextId('sequences.encounter')),
        pid: row.pid,
        date: e.date,
        onset_date: null,
        reason: e.reason,
        facility: facility.name,
        facility_id: facility.id,
        billing_facility: facility.id,
        sensitivity: 'normal',
        referral_source: '',
        pos_code: '11',
        external_id: '',
        pc_catid: '5',
        class_code: 'AMB',
        provider_id: oncologist.id,
        user: oncologist.username,
        group: 'Default',
        last_update: e.date,
      };
      t.encounters.push(enc);
      if (e.vitals) {
        const v = e.vitals;
        t.vitals.push({
          id: String(store.nextId('form_vitals.id')),
          uuid: makeUuid(`vital:${p.key}:${i}`),
          fid: String(store.nextId('forms.id')),
          pid: row.pid,
          eid: enc.encounter,
          date: e.date,
          user: oncologist.username,
          groupname: 'Default',
          authorized: '1',
          activity: '1',
          bps: v.bps ?? null,
          bpd: v.bpd ?? null,
          weight: v.weight ?? null,
          height: v.height ?? null,
          temperature: v.temperature ?? null,
          temp_method: v.temperature ? 'Oral' : null,
          pulse: v.pulse ?? null,
          respiration: v.respiration ?? null,
          note: null,
          BMI: null,
          BMI_status: null,
          waist_circ: null,
          head_circ: null,
          oxygen_saturation: v.oxygen_saturation ?? null,
        });
      }
      if (e.soap) {
        t.soapNotes.push({
          id: String(store.nextId('form_soap.id')),
          fid: String(store.nextId('forms.id')),
          pid: row.pid,
          eid: enc.encounter,
          date: e.date,
          user: oncologist.username,
          groupname: 'Default',
          authorized: '1',
          activity: '1',
          subjective: e.soap[0],
          objective: e.soap[1],
          assessment: e.soap[2],
          plan: e.soap[3],
        });
      }
    });
    p.procedures.forEach((pr, i) => {
      t.procedures.push({
        procedure_order_id: String(store.nextId('procedure_order.id')),
        uuid: makeUuid(`proc:${p.key}:${i}`),
        pid: row.pid,
        encounter_id: null,
        provider_id: oncologist.id,
        date_ordered: pr.date,
        order_status: 'complete',
        procedure_code: pr.code,
        procedure_name: pr.name,
        clinical_hx: pr.hx,
      });
    });
  }
  t.appointments.push({
    pc_eid: String(store.nextId('openemr_postcalendar_events.pc_eid')),
    pc_uuid: makeUuid('appt:maria-rossi:0'),
    pid: t.patients[0]?.pid ?? '1',
    pc_aid: oncologist.id,
    pc_catid: '9',
    pc_title: 'Established Patient',
    pc_duration: '1800',
    pc_hometext: 'Post-chemoradiation MRI review',
    pc_apptstatus: '-',
    pc_eventDate: '2026-01-15',
    pc_startTime: '09:30:00',
    pc_endTime: '10:00:00',
    pc_facility: facility.id,
    pc_billing_location: facility.id,
  });

  const extra = options.extraPatients ?? 0;
  const given = ['Alex', 'Sam', 'Jordan', 'Robin', 'Kim', 'Noor', 'Eli', 'Ari', 'Quinn', 'Sasha'];
  const family = ['Moreau', 'Novak', 'Haddad', 'Silva', 'Kowalski', 'Ibrahim', 'Larsen', 'Petrov', 'Costa', 'Nguyen'];
  for (let i = 0; i < extra; i++) {
    addPatient(`extra:${i}`, {
      fname: given[i % given.length] ?? 'Alex',
      lname: `${family[Math.floor(i / given.length) % family.length] ?? 'Moreau'}${i >= 100 ? String(i) : ''}`,
      DOB: `19${String(40 + (i % 60)).padStart(2, '0')}-0${1 + (i % 9)}-1${i % 10}`,
      sex: i % 2 === 0 ? 'Female' : 'Male',
      city: 'Springfield',
      state: 'IL',
    });
  }
  for (const name of [
    'patients',
    'lists',
    'prescriptions',
    'encounters',
    'vitals',
    'soapNotes',
    'procedures',
    'appointments',
  ] as const)
    store.touch(name);
}
