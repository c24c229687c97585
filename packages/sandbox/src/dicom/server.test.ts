/**
 * Emulator-specific behaviour the contract suite does not reach: persistence across restarts, auth, and bad
 * input changing nothing. (The Orthanc contract suite in @cdss/orthanc-client covers the API itself.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { zipSync } from 'fflate';
import { generatePhantom, writePhantomStudy } from '@cdss/dicom';
import { createDicomStoreEmulator } from './server.js';
import { orthancId } from './store.js';

const root = mkdtempSync(join(tmpdir(), 'cdss-dicom-emulator-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const auth = { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
const study = writePhantomStudy(generatePhantom({ seed: 4, dims: [16, 16, 6] }), { patientId: 'EMU-1' });

async function post(url: string, body: Uint8Array, type: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { ...auth, 'content-type': type }, body });
}

describe('DICOM store emulator', () => {
  it('requires the configured credentials', async () => {
    const emu = await createDicomStoreEmulator({
      root: join(root, 'auth'),
      credentials: { username: 'u', password: 'p' },
    });
    try {
      expect((await fetch(`${emu.url}/system`)).status).toBe(401);
      expect(
        (
          await fetch(`${emu.url}/system`, {
            headers: { authorization: `Basic ${Buffer.from('u:wrong').toString('base64')}` },
          })
        ).status,
      ).toBe(401);
      expect((await fetch(`${emu.url}/system`, { headers: auth })).status).toBe(200);
      expect(emu.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await emu.close();
    }
  });

  it('keeps instances and the change feed across a restart, continuing the sequence', async () => {
    const dir = join(root, 'restart');
    let emu = await createDicomStoreEmulator({
      root: dir,
      credentials: { username: 'u', password: 'p' },
      stableAgeSeconds: 60,
    });
    for (const f of study.series.t1.files)
      expect((await post(`${emu.url}/instances`, f, 'application/dicom')).status).toBe(200);
    const before = (await (await fetch(`${emu.url}/changes?since=0&limit=1000`, { headers: auth })).json()) as {
      Changes: Array<{ Seq: number }>;
      Last: number;
    };
    expect(before.Changes.length).toBe(6 + 3);
    await emu.close();
    emu = await createDicomStoreEmulator({ root: dir, credentials: { username: 'u', password: 'p' } });
    try {
      const stats = (await (await fetch(`${emu.url}/statistics`, { headers: auth })).json()) as {
        CountInstances: number;
        CountSeries: number;
      };
      expect(stats).toMatchObject({ CountInstances: 6, CountSeries: 1 });
      const after = (await (await fetch(`${emu.url}/changes?since=0&limit=1000`, { headers: auth })).json()) as {
        Changes: Array<{ Seq: number }>;
        Last: number;
      };
      expect(after.Changes.map((c) => c.Seq)).toEqual(before.Changes.map((c) => c.Seq));
      await post(`${emu.url}/instances`, study.series.t2.files[0]!, 'application/dicom');
      const next = (await (await fetch(`${emu.url}/changes?since=${before.Last}`, { headers: auth })).json()) as {
        Changes: Array<{ Seq: number; ChangeType: string }>;
      };
      expect(next.Changes[0]!.Seq).toBe(before.Last + 1);
      expect(next.Changes.map((c) => c.ChangeType)).toEqual(['NewSeries', 'NewInstance']);
      const seriesId = orthancId('EMU-1', study.studyInstanceUid, study.series.t1.seriesInstanceUid);
      expect((await fetch(`${emu.url}/series/${seriesId}`, { headers: auth })).status).toBe(200);
    } finally {
      await emu.close();
    }
  });

  it('rejects bad input with 400 and stores nothing: non-DICOM, a ZIP with one bad file, bad JSON, unknown QIDO keys', async () => {
    const emu = await createDicomStoreEmulator({ root: join(root, 'bad') });
    try {
      const count = async (): Promise<number> =>
        ((await (await fetch(`${emu.url}/statistics`)).json()) as { CountInstances: number }).CountInstances;
      const r1 = await post(
        `${emu.url}/instances`,
        new TextEncoder().encode('not dicom at all'.repeat(20)),
        'application/dicom',
      );
      expect(r1.status).toBe(400);
      expect(((await r1.json()) as { Message: string }).Message).toMatch(/no "DICM" prefix/);
      const zip = zipSync({ 'a.dcm': study.series.t1.files[0]!, 'b.dcm': study.series.t1.files[1]!.slice(0, 300) });
      expect((await post(`${emu.url}/instances`, zip, 'application/zip')).status).toBe(400);
      expect(await count()).toBe(0);
      expect(
        (await post(`${emu.url}/tools/find`, new TextEncoder().encode('{"Level":"Nope"'), 'application/json')).status,
      ).toBe(400);
      expect((await fetch(`${emu.url}/dicom-web/studies?NotAKeyword=1`)).status).toBe(400);
      expect((await fetch(`${emu.url}/series/unknown`)).status).toBe(404);
      const stow = await fetch(`${emu.url}/dicom-web/studies/1.2.3`, {
        method: 'POST',
        headers: { 'content-type': 'multipart/related; type="application/dicom"; boundary=xx' },
        body: Buffer.concat([
          Buffer.from('--xx\r\nContent-Type: application/dicom\r\n\r\n'),
          study.series.t1.files[0]!,
          Buffer.from('\r\n--xx--\r\n'),
        ]),
      });
      expect(stow.status).toBe(409);
      expect(((await stow.json()) as Record<string, { Value?: unknown[] }>)['00081198']!.Value).toHaveLength(1);
      expect(await count()).toBe(0);
    } finally {
      await emu.close();
    }
  });
});
