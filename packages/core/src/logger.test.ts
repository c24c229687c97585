import { describe, expect, it } from 'vitest';
import { HttpError } from './errors.js';
import {
  createRedactingLogger,
  isRedactedKey,
  noopLogger,
  redact,
  REDACTED,
  REDACTED_KEYS,
  scrubString,
  type Logger,
} from './logger.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXRpZW50LTEifQ.c2lnbmF0dXJlLXZhbHVl';

function capture(): { logger: Logger & { child(b: object): Logger }; lines: unknown[][] } {
  const lines: unknown[][] = [];
  const make = (bindings: object): Logger & { child(b: object): Logger } => ({
    debug: (o, m) => lines.push(['debug', bindings, o, m]),
    info: (o, m) => lines.push(['info', bindings, o, m]),
    warn: (o, m) => lines.push(['warn', bindings, o, m]),
    error: (o, m) => lines.push(['error', bindings, o, m]),
    child: (b) => make({ ...bindings, ...b }),
  });
  return { logger: make({}), lines };
}

describe('redact', () => {
  it('masks every PHI field: names, birth dates, addresses, phones, emails, identifiers', () => {
    const patient = {
      fname: 'Ada',
      lname: 'Lovelace',
      mname: 'B',
      firstName: 'Ada',
      lastName: 'Lovelace',
      middleName: 'B',
      name: [{ family: 'Lovelace', given: ['Ada'] }],
      family: 'Lovelace',
      given: ['Ada'],
      fullName: 'Ada Lovelace',
      patientName: 'Lovelace^Ada',
      maidenName: 'Byron',
      mothersname: 'Anne',
      guardiansname: 'Anne',
      alias: 'AL',
      DOB: '1815-12-10',
      dob: '1815-12-10',
      birthDate: '1815-12-10',
      date_of_birth: '1815-12-10',
      address: [{ line: ['12 St James Sq'], city: 'London' }],
      street: '12 St James Sq',
      street_address: '12 St James Sq',
      city: 'London',
      postal_code: 'SW1Y',
      postalCode: 'SW1Y',
      zip: '10001',
      county: 'Middlesex',
      phone_home: '+44 20 1234',
      phone_cell: '+44 20 5678',
      phone_biz: '1',
      phone_contact: '2',
      phoneNumber: '3',
      mobile: '4',
      fax: '5',
      telecom: [{ system: 'phone', value: '6' }],
      email: 'ada@example.org',
      email_direct: 'ada@direct.example.org',
      ss: undefined,
      ssn: '123-45-6789',
      SSN: '123-45-6789',
      mrn: 'MRN-1',
      MedicalRecordNumber: 'MRN-1',
      pid: 7,
      pubpid: 'PUB-7',
      uuid: '9a1f1c5e-1b2c-4d3e-8f90-123456789abc',
      puuid: '9a1f1c5e-1b2c-4d3e-8f90-123456789abc',
      patientId: 'P1',
      patient_uuid: 'u',
      identifier: [{ system: 'urn:mrn', value: 'MRN-1' }],
      drivers_license: 'D1',
      sex: 'female',
    };
    const out = redact(patient) as Record<string, unknown>;
    for (const key of Object.keys(patient)) {
      if (key === 'sex' || key === 'ss') continue;
      expect(out[key], key).toBe(REDACTED);
    }
    expect(out['sex']).toBe('female');
    expect(JSON.stringify(out)).not.toMatch(/Ada|Lovelace|1815|London|SW1Y|123-45|MRN-1|9a1f1c5e|ada@/);
  });

  it('masks DICOM JSON patient tags', () => {
    const dicom = {
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Lovelace^Ada' }] },
      '00100020': { vr: 'LO', Value: ['MRN-1'] },
      '00100030': { vr: 'DA', Value: ['18151210'] },
      '00101040': { vr: 'LO', Value: ['London'] },
      '00102154': { vr: 'SH', Value: ['+44'] },
      '00101000': { vr: 'LO', Value: ['OTHER'] },
      '0020000D': { vr: 'UI', Value: ['1.2.3'] },
    };
    const out = redact(dicom) as Record<string, unknown>;
    for (const tag of ['00100010', '00100020', '00100030', '00101040', '00102154', '00101000'])
      expect(out[tag]).toBe(REDACTED);
    expect(out['0020000D']).toEqual(dicom['0020000D']);
  });

  it('masks every secret header and field, case-insensitively', () => {
    const value = {
      headers: {
        Authorization: 'Bearer abc',
        'Proxy-Authorization': 'Basic x',
        Cookie: 'sid=1',
        'Set-Cookie': ['sid=1'],
        'X-Api-Key': 'k',
        'x-auth-token': 't',
        accept: 'application/json',
      },
      access_token: 'a',
      refreshToken: 'r',
      id_token: 'i',
      token: 't',
      password: 'p',
      PASSWORD: 'p',
      dbPassword: 'p',
      client_secret: 's',
      clientSecret: 's',
      apiKey: 'k',
      api_key: 'k',
      private_key: 'k',
      sessionId: 's',
      tokenType: 'Bearer',
    };
    const out = redact(value);
    expect(out.headers).toEqual({
      Authorization: REDACTED,
      'Proxy-Authorization': REDACTED,
      Cookie: REDACTED,
      'Set-Cookie': REDACTED,
      'X-Api-Key': REDACTED,
      'x-auth-token': REDACTED,
      accept: 'application/json',
    });
    for (const key of Object.keys(value)) {
      if (key === 'headers' || key === 'tokenType') continue;
      expect(out[key as keyof typeof out], key).toBe(REDACTED);
    }
    expect(out.tokenType).toBe('Bearer');
  });

  it('walks nested arrays, leaves the input untouched and survives cycles', () => {
    const input: Record<string, unknown> = { entries: [{ resource: { name: 'x', id: '1' } }], n: 1, nil: null };
    input['self'] = input;
    const shared = { city: 'Paris' };
    input['a'] = shared;
    input['b'] = shared;
    const out = redact(input);
    expect(out['entries']).toEqual([{ resource: { name: REDACTED, id: '1' } }]);
    expect(out['self']).toBe('[Circular]');
    expect(out['a']).toEqual({ city: REDACTED });
    expect(out['b']).toEqual({ city: REDACTED });
    expect(out['nil']).toBeNull();
    expect((input['entries'] as { resource: { name: string } }[])[0]?.resource.name).toBe('x');
  });

  it('copies dates, summarises binary, turns errors, maps and sets into plain data', () => {
    const date = new Date(0);
    const err = new HttpError({ method: 'GET', url: 'http://h/x?access_token=abc', status: 500 });
    const out = redact({
      when: date,
      bytes: Buffer.alloc(4),
      buf: new ArrayBuffer(2),
      err,
      map: new Map([
        ['email', 'a@b.c'],
        ['k', 'v'],
      ]),
      set: new Set(['Bearer abcdef']),
      n: 3,
    });
    expect(out.when).toEqual(date);
    expect(out.when).not.toBe(date);
    expect(out.bytes).toBe('[Binary 4 bytes]');
    expect(out.buf).toBe('[Binary 2 bytes]');
    expect(out.err).toMatchObject({ name: 'HttpError', status: 500, code: 'HTTP_ERROR' });
    expect(JSON.stringify(out.err)).not.toContain('abc');
    expect(out.map).toEqual({ email: REDACTED, k: 'v' });
    expect(out.set).toEqual([`Bearer ${REDACTED}`]);
  });

  it('scrubs bearer tokens, JWTs, URL credentials and secret parameters inside strings', () => {
    expect(scrubString('Authorization: Bearer abc.def-ghi')).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(scrubString(`token ${JWT} here`)).toBe(`token ${REDACTED} here`);
    expect(scrubString('basic dXNlcjpwYXNz')).toBe(`basic ${REDACTED}`);
    expect(scrubString('amqp://ci:ci-pass@127.0.0.1:25682')).toBe(`amqp://${REDACTED}@127.0.0.1:25682`);
    expect(scrubString('GET /cb?code=1&access_token=xyz&client_secret=s')).toBe(
      `GET /cb?code=1&access_token=${REDACTED}&client_secret=${REDACTED}`,
    );
    expect(scrubString('short')).toBe('short');
    expect(scrubString('Basic auth needs basic information')).toBe('Basic auth needs basic information');
    expect(redact(`failed with Bearer ${JWT}`)).not.toContain('eyJ');
  });

  it('documents its key list and matches keys regardless of case and separators', () => {
    expect(REDACTED_KEYS.has('authorization')).toBe(true);
    expect(isRedactedKey('Set-Cookie')).toBe(true);
    expect(isRedactedKey('birth_date')).toBe(true);
    expect(isRedactedKey('patient.id')).toBe(true);
    expect(isRedactedKey('status')).toBe(false);
    expect(isRedactedKey('resourceType')).toBe(false);
  });
});

describe('createRedactingLogger', () => {
  it('redacts objects and messages at every level', () => {
    const { logger, lines } = capture();
    const safe = createRedactingLogger(logger);
    safe.debug({ headers: { authorization: 'Bearer abc' } }, 'debug');
    safe.info({ patient: { name: 'Ada', dob: '1815-12-10' } }, `token ${JWT}`);
    safe.warn('Bearer abcdefgh in a string');
    safe.error({ err: new Error('password=hunter2') });
    expect(lines).toEqual([
      ['debug', {}, { headers: { authorization: REDACTED } }, 'debug'],
      ['info', {}, { patient: { name: REDACTED, dob: REDACTED } }, `token ${REDACTED}`],
      ['warn', {}, `Bearer ${REDACTED} in a string`, undefined],
      ['error', {}, { err: expect.objectContaining({ message: `password=${REDACTED}` }) }, undefined],
    ]);
  });

  it('children redact their bindings and lines, with or without a native child()', () => {
    const { logger, lines } = capture();
    createRedactingLogger(logger).child({ mrn: 'MRN-1', job: 'j1' }).info({ email: 'a@b.c' }, 'm');
    expect(lines[0]).toEqual(['info', { mrn: REDACTED, job: 'j1' }, { email: REDACTED }, 'm']);

    const flat: unknown[][] = [];
    const plain: Logger = {
      debug: (o, m) => flat.push([o, m]),
      info: (o, m) => flat.push([o, m]),
      warn: (o, m) => flat.push([o, m]),
      error: (o, m) => flat.push([o, m]),
    };
    const child = createRedactingLogger(plain).child({ ssn: '1', job: 'j1' });
    child.info({ a: 1 }, 'x');
    child.warn('just text');
    child.error({ b: 2 });
    child.child({ phone: '5' }).debug({ c: 3 });
    expect(flat).toEqual([
      [{ ssn: REDACTED, job: 'j1', a: 1 }, 'x'],
      [{ ssn: REDACTED, job: 'j1' }, 'just text'],
      [{ ssn: REDACTED, job: 'j1', b: 2 }, undefined],
      [{ ssn: REDACTED, job: 'j1', phone: REDACTED, c: 3 }, undefined],
    ]);
  });

  it('noopLogger accepts everything and drops it', () => {
    expect(() => {
      noopLogger.info({ a: 1 }, 'x');
      noopLogger.debug('x');
      noopLogger.warn('x');
      noopLogger.error('x');
    }).not.toThrow();
    expect(noopLogger.child?.({})).toBe(noopLogger);
  });
});
