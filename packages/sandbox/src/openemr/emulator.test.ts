/**
 * The OpenEMR emulator on its own: seed data, persistence (JSON files, atomic writes) across a restart and
 * across a real kill of its process, option validation, and version-specific answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenEmrEngine } from './engine.js';
import type { EmulatorRequest } from './context.js';
import { SEED_ADMIN, SEED_CLIENT } from './seed.js';
import { freePort } from '@cdss/core/testing';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'openemr-emulator-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SCOPE =
  'openid offline_access api:oemr api:fhir user/patient.crus user/encounter.crus user/medication.cruds user/prescription.crds user/Patient.rs';
/** The same in SMART v1 syntax, the only one 7.0 knows (recorded-7.0.1 files 01, 05). */
const SCOPE_V1 =
  'openid offline_access api:oemr api:fhir user/patient.read user/patient.write user/encounter.read user/encounter.write user/medication.read user/medication.write user/Patient.read';
const req = (method: string, url: string, extra: Partial<EmulatorRequest> = {}): EmulatorRequest => ({
  method,
  url,
  headers: {},
  origin: 'http://127.0.0.1:1',
  ...extra,
});
const form = (fields: Record<string, string>): Partial<EmulatorRequest> => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});
const passwordGrant = {
  grant_type: 'password',
  client_id: SEED_CLIENT.clientId,
  client_secret: SEED_CLIENT.clientSecret,
  user_role: 'users',
  username: SEED_ADMIN.username,
  password: SEED_ADMIN.password,
  scope: SCOPE,
};

const text = (body: string | Buffer | undefined): string => (body === undefined ? '' : body.toString());

async function token(engine: OpenEmrEngine): Promise<string> {
  const scope = engine.version === '7.0' ? SCOPE_V1 : SCOPE;
  const res = await engine.handle(req('POST', '/oauth2/default/token', form({ ...passwordGrant, scope })));
  expect(res.status).toBe(200);
  return (JSON.parse(text(res.body) || '{}') as { access_token: string }).access_token;
}

async function call(
  engine: OpenEmrEngine,
  bearer: string,
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await engine.handle(
    req(method, url, {
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return {
    status: res.status,
    json: text(res.body) === '' ? undefined : (JSON.parse(text(res.body)) as unknown),
  };
}

describe('seed data', () => {
  it('has demo patients with pid and uuid, encounters with eid and euuid, and brain-tumour histories', async () => {
    const engine = new OpenEmrEngine();
    const t = engine.store.tables;
    expect(t.patients.length).toBeGreaterThanOrEqual(6);
    for (const p of t.patients) {
      expect(p.pid).toMatch(/^\d+$/);
      expect(p.uuid).toMatch(/^[0-9a-f-]{36}$/);
    }
    for (const e of t.encounters) {
      expect(e.encounter).toMatch(/^\d+$/);
      expect(e.uuid).toMatch(/^[0-9a-f-]{36}$/);
    }
    const problems = t.lists.filter((l) => l.type === 'medical_problem').map((l) => l.title.toLowerCase());
    for (const kind of [
      'glioblastoma',
      'astrocytoma',
      'oligodendroglioma',
      'meningioma',
      'medulloblastoma',
      'secondary malignant neoplasm of brain',
    ]) {
      expect(problems.some((p) => p.includes(kind))).toBe(true);
    }
    expect(t.lists.some((l) => l.type === 'medication' && l.title === 'Temozolomide')).toBe(true);
    // Stable identifiers: the same seed gives the same uuids on every machine.
    expect(new OpenEmrEngine().store.tables.patients.map((p) => p.uuid)).toEqual(t.patients.map((p) => p.uuid));
  });

  it('refuses invalid options, naming them', async () => {
    expect(() => new OpenEmrEngine({ version: '9' as never })).toThrow(/version/);
    expect(() => new OpenEmrEngine({ tokenLifetimes: { accessTokenSeconds: -1 } })).toThrow(
      /tokenLifetimes\.accessTokenSeconds/,
    );
  });
});

describe('persistence', () => {
  it('survives a restart: data and tokens come back from the JSON files, written atomically', async () => {
    const dir = tmp();
    const first = new OpenEmrEngine({ dataDir: dir });
    const bearer = await token(first);
    const created = await call(first, bearer, 'POST', '/apis/default/api/patient', {
      fname: 'Persisted',
      lname: 'Patient',
      DOB: '1970-01-01',
      sex: 'Female',
    });
    expect(created.status).toBe(201);
    const { uuid } = (created.json as { data: { uuid: string } }).data;
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['patients.json', 'tokens.json', 'counters.json']));

    const second = new OpenEmrEngine({ dataDir: dir });
    const read = await call(second, bearer, 'GET', `/apis/default/api/patient/${uuid}`);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ data: { fname: 'Persisted' } });
    // Sequences continue instead of reusing ids.
    const next = await call(second, bearer, 'POST', '/apis/default/api/patient', {
      fname: 'Next',
      lname: 'Patient',
      DOB: '1970-01-01',
      sex: 'Male',
    });
    expect((next.json as { data: { pid: number } }).data.pid).toBe(8);
  });

  it('bad input changes nothing on disk', async () => {
    const dir = tmp();
    const engine = new OpenEmrEngine({ dataDir: dir });
    const bearer = await token(engine);
    const before = readdirSync(dir).length;
    const res = await call(engine, bearer, 'POST', '/apis/default/api/patient', {
      fname: 'X',
      lname: 'Y',
      DOB: 'yesterday',
      sex: 'M',
    });
    expect(res.status).toBe(400);
    expect(new OpenEmrEngine({ dataDir: dir }).store.tables.patients).toHaveLength(6);
    expect(readdirSync(dir).length).toBe(before);
  });

  it('nothing acknowledged is lost when the emulator process is killed (SIGKILL by PID) and restarted', async () => {
    const dir = tmp();
    const root = fileURLToPath(new URL('../../../../', import.meta.url));
    const script = fileURLToPath(new URL('./__fixtures__/serve-openemr.ts', import.meta.url));
    const start = async (): Promise<{ child: ChildProcess; base: string }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        cwd: root,
        env: { ...process.env, OPENEMR_DATA_DIR: dir, PORT: String(await freePort()) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const port = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /LISTENING (\d+)/.exec(out);
          if (m) resolve(m[1] ?? '');
        });
        child.once('exit', (code) => reject(new Error(`emulator exited with ${String(code)}`)));
      });
      return { child, base: `http://127.0.0.1:${port}` };
    };
    const stop = (child: ChildProcess): Promise<void> =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      });

    const a = await start();
    let tokenBody: { access_token: string };
    const created: string[] = [];
    try {
      tokenBody = (await (
        await fetch(`${a.base}/oauth2/default/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(passwordGrant),
        })
      ).json()) as { access_token: string };
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${a.base}/apis/default/api/patient`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokenBody.access_token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ fname: `Killed${i}`, lname: 'Process', DOB: '1980-01-01', sex: 'Male' }),
        });
        expect(res.status).toBe(201);
        created.push(((await res.json()) as { data: { uuid: string } }).data.uuid);
      }
    } finally {
      await stop(a.child);
    }
    const b = await start();
    try {
      for (const uuid of created) {
        const res = await fetch(`${b.base}/apis/default/api/patient/${uuid}`, {
          headers: { authorization: `Bearer ${tokenBody.access_token}` },
        });
        expect(res.status).toBe(200);
      }
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      await stop(b.child);
    }
  });
});

describe('version profiles', () => {
  it.each([
    ['8.0', 404, undefined],
    ['7.0', 404, undefined],
  ] as const)(
    '%s: an empty legacy list is %i with body %s (recorded: 8.0.0 file 25, 7.0.1 file 31)',
    async (version, status, body) => {
      const engine = new OpenEmrEngine({ version, seed: false });
      const bearer = await token(engine);
      const p = await call(engine, bearer, 'POST', '/apis/default/api/patient', {
        fname: 'No',
        lname: 'Meds',
        DOB: '1980-01-01',
        sex: 'Male',
      });
      const pid = (p.json as { data: { pid: number } }).data.pid;
      const res = await engine.handle(
        req('GET', `/apis/default/api/patient/${pid}/medication`, { headers: { authorization: `Bearer ${bearer}` } }),
      );
      expect(res.status).toBe(status);
      expect(res.body).toBe(body);
    },
  );

  it('pagination only on 8.x /api/patient, links use _count; 7.0.1 ignores _limit/_offset (recorded)', async () => {
    const v8 = new OpenEmrEngine({ version: '8.0' });
    const page = (await call(v8, await token(v8), 'GET', '/apis/default/api/patient?_limit=2&_offset=2')).json as {
      data: unknown[];
      links: Record<string, string>;
    };
    expect(page.data).toHaveLength(2);
    expect(page.links['next']).toBe('http://127.0.0.1:1?&_offset=4&_count=2');
    const v7 = new OpenEmrEngine({ version: '7.0' });
    const all = (await call(v7, await token(v7), 'GET', '/apis/default/api/patient?_limit=2&_offset=2')).json as Record<
      string,
      unknown
    >;
    expect((all['data'] as unknown[]).length).toBe(v7.store.tables.patients.length);
    expect(all).not.toHaveProperty('links');
  });

  it('echoes Origin, answers OPTIONS on API routes with 404 (8.x preflight bug), and 404 for unknown routes', async () => {
    const engine = new OpenEmrEngine({ version: '8' });
    const res = await engine.handle(
      req('GET', '/apis/default/api/version', { headers: { origin: 'https://app.example' } }),
    );
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
    expect((await engine.handle(req('OPTIONS', '/apis/default/api/patient'))).status).toBe(404);
    const unknown = await engine.handle(req('GET', '/apis/default/api/nothing'));
    expect([unknown.status, JSON.parse(text(unknown.body) || '{}')]).toEqual([
      404,
      { error: 'An error occurred', message: 'Route not found', code: 0 },
    ]);
  });

  it('prescription writes exist only on 8.2 (8.0.0 answers 404, recorded file 45)', async () => {
    for (const [version, status] of [
      ['7.0', 404],
      ['8.0', 404],
      ['8.2', 201],
    ] as const) {
      const engine = new OpenEmrEngine({ version });
      const bearer = await token(engine);
      const res = await call(engine, bearer, 'POST', '/apis/default/api/prescription', { patient_id: 1, drug: 'x' });
      expect(res.status).toBe(status);
    }
  });
});

describe('Express adapter', () => {
  it('works behind app-level body parsers (json and urlencoded)', async () => {
    const express = (await import('express')).default;
    const { createOpenEmrEmulator } = await import('./router.js');
    const app = express();
    app.use(express.json(), express.urlencoded({ extended: false }));
    const router = createOpenEmrEmulator({ version: '8' });
    app.use(router);
    const listenPort = await freePort();
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(listenPort, '127.0.0.1', () => resolve(s));
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const tok = (await (
        await fetch(`${base}/oauth2/default/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(passwordGrant),
        })
      ).json()) as { access_token: string };
      const res = await fetch(`${base}/apis/default/api/patient`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ fname: 'Parsed', lname: 'Body', DOB: '1990-01-01', sex: 'Female' }),
      });
      expect(res.status).toBe(201);
      expect(router.engine.store.tables.patients.some((p) => p.fname === 'Parsed')).toBe(true);
    } finally {
      server.close();
    }
  });
});
