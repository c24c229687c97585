/**
 * The OpenAPI document says exactly what the server accepts: schemathesis (every check, a fixed seed, a bounded number
 * of examples) runs against the sandbox server composed as `npm start` does, fed real ids (a seeded patient, its study
 * and series, and an analysis the in-process worker finished) and, per operation, a token of a role allowed to call it.
 * Requests to the AI webhook are signed with the server's webhook secret by `tools/schemathesis/hooks.py`, so its
 * bodies (job events) are checked too, not only its signature. Any failure (a server error, a schema-valid request refused, a response off the document, ...) fails the test.
 *
 * schemathesis is a Python tool, pinned in `tools/schemathesis/requirements.txt` and installed into
 * `tools/schemathesis/.venv` by `tools/schemathesis/install.sh` (`.ci/run` does it). Without it the suite skips,
 * except under CI=true, where it fails.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, type ComposedServer } from '../src/compose.js';
import { DEMO_USERS } from '../src/auth/tokens.js';
import { rolesWith } from '../src/auth/rbac.js';
import { freePort } from '@cdss/core/testing';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SCHEMATHESIS = process.env['CDSS_SCHEMATHESIS'] ?? join(repoRoot, 'tools/schemathesis/.venv/bin/schemathesis');
const HOOKS = join(repoRoot, 'tools/schemathesis/hooks.py');
/** The server's webhook secret, which the hooks sign with. */
const WEBHOOK_SECRET = randomBytes(24).toString('hex');
/** Fixed, so a run can be replayed; bounded, so CI stays fast. */
const SEED = 20_261_206;
const MAX_EXAMPLES = 20;

const available = existsSync(SCHEMATHESIS);
if (!available) {
  const reason = `schemathesis not found at ${SCHEMATHESIS} (run \`bash tools/schemathesis/install.sh\`)`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${reason}`);
  process.stderr.write(`[skip] schemathesis suite: ${reason}\n`);
}

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-schemathesis-'));
let composed: ComposedServer;
let baseUrl: string;

async function json<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, init);
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

const tokenOf = async (userId: string): Promise<string> =>
  (
    await json<{ access_token: string }>('/api/sandbox/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    })
  ).access_token;

/** A TOML string (basic string with escapes). */
const toml = (value: string): string => JSON.stringify(value);

beforeAll(async () => {
  if (!available) return;
  const config = loadConfig({
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '1',
    CDSS_LOG_LEVEL: 'error',
    CDSS_RATE_LIMIT_PER_MINUTE: '100000000',
    CDSS_WEBHOOK_SECRET: WEBHOOK_SECRET,
  });
  composed = await composeServer(config, createLogger('error'), 'test');
  baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
}, 180_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe.runIf(available)('the OpenAPI document against the server (schemathesis)', () => {
  it('finds no failure with every check', async () => {
    // Real ids: the seeded patient with a study, its series, and a finished analysis of it.
    const physician = await tokenOf('demo-physician');
    const auth = (token: string) => ({ authorization: `Bearer ${token}` });
    const { items: patients } = await json<{ items: Array<{ id: string }> }>('/api/patients?limit=50', {
      headers: auth(physician),
    });
    let study: { uid: string; series: Array<{ uid: string }> } | undefined;
    let patientId = '';
    for (const patient of patients) {
      const { items } = await json<{ items: Array<{ uid: string; series: Array<{ uid: string }> }> }>(
        `/api/patients/${patient.id}/studies`,
        { headers: auth(physician) },
      );
      if (items[0]) {
        study = items[0];
        patientId = patient.id;
        break;
      }
    }
    if (!study) throw new Error('the sandbox seeded no study');
    const studyUid = study.uid;
    const series = study.series;
    const { id: analysisId } = await json<{ id: string }>(`/api/studies/${studyUid}/analyses`, {
      method: 'POST',
      headers: { ...auth(physician), 'content-type': 'application/json' },
      body: JSON.stringify({ patientId }),
    });
    await expect
      .poll(
        async () =>
          (await json<{ status: string }>(`/api/analyses/${analysisId}`, { headers: auth(physician) })).status,
        {
          timeout: 120_000,
          interval: 500,
        },
      )
      .toBe('succeeded');
    // Analyses the run requests stay queued: the worker's CPU is not part of what is tested here.
    await composed.worker?.stop();

    const tokens = new Map<string, string>();
    for (const user of DEMO_USERS) tokens.set(user.role, await tokenOf(user.id));
    const ids: Record<string, string> = {
      'path.studyUid': studyUid,
      'path.seriesUid': series[0]!.uid,
    };
    const operations = composed.server.routes.map((route) => {
      const lines = ['[[operations]]', `include-operation-id = ${toml(route.operationId)}`];
      if (typeof route.access === 'object') {
        const role = rolesWith(route.access.permission)[0]!;
        lines.push(`headers = { Authorization = ${toml(`Bearer ${tokens.get(role)}`)} }`);
      }
      const parameters = { ...ids };
      if (route.path.startsWith('/api/patients/{id}')) parameters['path.id'] = patientId;
      if (route.path.startsWith('/api/analyses/{id}')) parameters['path.id'] = analysisId;
      // An analysis request names the study's patient; any other patient is refused (422) before anything else.
      if (route.operationId === 'requestAnalysis') parameters['body.patientId'] = patientId;
      lines.push(
        `parameters = { ${Object.entries(parameters)
          .filter(([name]) => !name.startsWith('path.') || route.path.includes(`{${name.slice('path.'.length)}}`))
          .map(([name, value]) => `${toml(name)} = ${toml(value)}`)
          .join(', ')} }`,
      );
      return lines.join('\n');
    });
    const configFile = join(dataDir, 'schemathesis.toml');
    const junitFile = join(dataDir, 'junit.xml');
    writeFileSync(
      configFile,
      [
        `hooks = ${toml(HOOKS)}`,
        '',
        // Links only from Location headers: guessing links from any `id` field feeds user ids into patient paths.
        '[phases.stateful.inference]',
        'algorithms = ["location-headers"]',
        // Sequences of valid calls only: a negative step would be overridden by the fixed ids and token above, and
        // then read as "invalid request accepted". Coverage and fuzzing still send invalid data to every operation.
        '[phases.stateful.generation]',
        'mode = "positive"',
        '',
        // A schema-valid request may still meet the state of the server: 409 (a conflict), 422 (an Idempotency-Key
        // reused with another body, a study of another patient), as the document declares them.
        '[checks.positive_data_acceptance]',
        'expected-statuses = ["2xx", "3xx", 401, 403, 404, 409, 422, 429]',
        '',
        ...operations,
      ].join('\n'),
    );

    const args = [
      '--config-file',
      configFile,
      'run',
      `${baseUrl}/openapi.json`,
      '--checks',
      'all',
      '--seed',
      String(SEED),
      '--max-examples',
      String(MAX_EXAMPLES),
      '--workers',
      '1',
      '--generation-database',
      'none',
      '--request-timeout',
      '30',
      '--no-color',
      '--report',
      'junit',
      '--report-junit-path',
      junitFile,
    ];
    // In the data folder: schemathesis keeps a cache of crashes in its working directory.
    const child = spawn(SCHEMATHESIS, args, {
      cwd: dataDir,
      env: { ...process.env, CDSS_WEBHOOK_SECRET: WEBHOOK_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    // The warnings and the summary go to the log of every run (CI's included): they say what was not reached.
    // Schemathesis frames its headings and closing line the way pytest does ("=== 2 warnings in 36.07s ==="); a CI
    // log reader that knows pytest takes such a line for a test run that executed no test, so each line is printed
    // behind a "schemathesis |" margin and the frames become dashes.
    const warnings = output.indexOf('WARNINGS');
    const report = output
      .slice(warnings >= 0 ? warnings : output.lastIndexOf('SUMMARY'))
      .trimEnd()
      .split('\n')
      .map((line) => `schemathesis | ${line.replace(/^=*\s*(\S.*?)\s*=+$/, '--- $1 ---')}`)
      .join('\n');
    process.stdout.write(`schemathesis ${args.join(' ')}\n${report}\n`);
    expect(code, output.slice(-12_000)).toBe(0);
    const junit = readFileSync(junitFile, 'utf8');
    expect(junit).toMatch(/<testsuites errors="0" failures="0"/);
    // One test case per operation, and the stateful run.
    expect(Number(/tests="(\d+)"/.exec(junit)?.[1])).toBeGreaterThan(composed.server.routes.length);
  }, 600_000);
});
