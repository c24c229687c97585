/**
 * The `cdss` command line (@cdss/cli) against the sandbox server composed as `npm start` does: status, an analysis
 * requested and followed to its end, and its report in every format the server offers (a format it does not offer
 * ends with exit code 5 and says so).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '@cdss/cli';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { freePort } from '@cdss/core/testing';

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-cli-server-'));
let composed: ComposedServer;
let env: Record<string, string>;

async function cdss(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    cwd: dataDir,
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  const config = loadConfig({ CDSS_DATA_DIR: dataDir, CDSS_SANDBOX_STUDIES: '1', CDSS_LOG_LEVEL: 'error' });
  composed = await composeServer(config, createLogger('error'), 'test');
  const server = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
  const response = await fetch(`${server}/api/sandbox/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'demo-physician' }),
  });
  const { access_token } = (await response.json()) as { access_token: string };
  env = { CDSS_SERVER_URL: server, CDSS_TOKEN: access_token, CDSS_ORTHANC_URL: composed.embedded.orthanc! };
}, 180_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('cdss against the sandbox server', () => {
  it('checks status, follows an analysis to its end and exports its report', async () => {
    const status = await cdss(['--json', 'status']);
    expect(status.code).toBe(EXIT.ok);
    expect(JSON.parse(status.stdout)).toMatchObject({ ok: true, checks: [{ name: 'server' }, { name: 'orthanc' }] });

    const headers = { authorization: `Bearer ${env['CDSS_TOKEN']}` };
    const { items: patients } = (await (
      await fetch(`${env['CDSS_SERVER_URL']}/api/patients?limit=50`, { headers })
    ).json()) as {
      items: Array<{ id: string }>;
    };
    let target: { patient: string; study: string } | undefined;
    for (const p of patients) {
      const { items } = (await (
        await fetch(`${env['CDSS_SERVER_URL']}/api/patients/${p.id}/studies`, { headers })
      ).json()) as { items: Array<{ uid: string }> };
      if (items[0]) target = { patient: p.id, study: items[0].uid };
      if (target) break;
    }
    expect(target, 'the sandbox seeds a study').toBeDefined();

    const followed = await cdss([
      '--json',
      'analyze',
      target!.study,
      '--patient',
      target!.patient,
      '--follow',
      '--interval',
      '200',
    ]);
    expect(followed.stderr).toBe('');
    expect(followed.code).toBe(EXIT.ok);
    const analysis = JSON.parse(followed.stdout) as {
      id: string;
      status: string;
      result?: { segInstanceUid?: string; srInstanceUid?: string };
    };
    expect(analysis.status).toBe('succeeded');

    const out = (name: string): string => join(dataDir, name);
    const fhir = await cdss(['report', analysis.id, '--format', 'fhir', '-o', out('report.json')]);
    expect(fhir.code).toBe(EXIT.ok);
    expect(JSON.parse(readFileSync(out('report.json'), 'utf8'))).toMatchObject({ resourceType: 'Bundle' });

    for (const format of ['seg', 'sr'] as const) {
      const recorded = format === 'seg' ? analysis.result?.segInstanceUid : analysis.result?.srInstanceUid;
      const r = await cdss(['report', analysis.id, '--format', format, '-o', out(`${format}.dcm`)]);
      if (recorded) {
        expect(r.code, r.stderr).toBe(EXIT.ok);
        expect(readFileSync(out(`${format}.dcm`)).toString('latin1', 128, 132)).toBe('DICM');
      } else {
        expect(r.code).toBe(EXIT.unsupported);
        expect(r.stderr).toContain(`has no DICOM ${format.toUpperCase()} recorded`);
      }
    }

    const doc = JSON.stringify(await (await fetch(`${env['CDSS_SERVER_URL']}/openapi.json`)).json());
    const pdf = await cdss(['report', analysis.id, '--format', 'pdf', '-o', out('report.pdf')]);
    if (doc.includes('application/pdf')) {
      expect(pdf.code, pdf.stderr).toBe(EXIT.ok);
      expect(readFileSync(out('report.pdf')).toString('latin1', 0, 5)).toBe('%PDF-');
    } else {
      expect(pdf.code).toBe(EXIT.unsupported);
      expect(pdf.stderr).toContain('offers no PDF report yet');
    }
  }, 180_000);
});
