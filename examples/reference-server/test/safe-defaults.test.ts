/**
 * Safe by default, checked on the real entry points: the composed sandbox serves its demo-token route only on a
 * loopback listen address (or when explicitly exposed, with a warning), and the Docker image's own environment starts
 * nothing without its configuration.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer } from '../src/compose.js';
import { freePort } from '@cdss/core/testing';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(packageDir, '..', '..');
const dataDirs: string[] = [];
afterAll(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** Composes the sandbox as `npm start` does (HOST as given), listens on 127.0.0.1, and asks for a demo token. */
async function tokenRouteWith(env: Record<string, string>): Promise<{ status: number; warnings: string[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-safe-'));
  dataDirs.push(dataDir);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const config = loadConfig({ CDSS_DATA_DIR: dataDir, CDSS_SANDBOX_STUDIES: '0', CDSS_WORKER: 'off', ...env });
  const composed = await composeServer(config, createLogger('warn', sink), 'test');
  try {
    const port = await composed.server.listen(await freePort(), '127.0.0.1');
    const response = await fetch(`http://127.0.0.1:${port}/api/sandbox/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'demo-admin' }),
    });
    const users = await fetch(`http://127.0.0.1:${port}/api/sandbox/users`);
    expect(users.status).toBe(response.status === 200 ? 200 : 404);
    return {
      status: response.status,
      warnings: lines.map((line) => (JSON.parse(line) as { msg: string }).msg),
    };
  } finally {
    await composed.close();
  }
}

describe('the sandbox token route', () => {
  it('is served when the server listens on loopback', async () => {
    const { status, warnings } = await tokenRouteWith({ HOST: '127.0.0.1' });
    expect(status).toBe(200);
    expect(warnings.filter((w) => w.includes('token route'))).toEqual([]);
  }, 60_000);

  it('does not exist when the server listens on another address, and the start says why', async () => {
    const { status, warnings } = await tokenRouteWith({ HOST: '0.0.0.0' });
    expect(status).toBe(404);
    expect(warnings).toContainEqual(expect.stringContaining('the sandbox token route is off'));
  }, 60_000);

  it('is served off loopback only with CDSS_SANDBOX_EXPOSE=true, with a warning at start', async () => {
    const { status, warnings } = await tokenRouteWith({ HOST: '0.0.0.0', CDSS_SANDBOX_EXPOSE: 'true' });
    expect(status).toBe(200);
    expect(warnings).toContainEqual(expect.stringContaining('CDSS_SANDBOX_EXPOSE=true'));
  }, 60_000);
});

/** The `ENV` of a Dockerfile's last stage. */
function runtimeEnv(dockerfile: string): Record<string, string> {
  const text = readFileSync(join(repoRoot, 'deploy', 'docker', dockerfile), 'utf8').replace(/\\\n/g, ' ');
  const lastStage = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of lastStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const match of line.slice(4).matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[match[1]!] = match[2]!;
  }
  return env;
}

describe('the Docker image of the server', () => {
  it('defaults to connected mode and refuses to start without its configuration, naming each variable', async () => {
    const env = runtimeEnv('server.Dockerfile');
    expect(env['CDSS_MODE']).toBe('connected');
    // The server's entry point with the image's environment and nothing else (as a plain `docker run` would).
    const child = spawn(process.execPath, ['--conditions=@cdss/source', '--import', 'tsx', 'src/main.ts'], {
      cwd: packageDir,
      env: { PATH: process.env['PATH'] ?? '', ...env, CDSS_DATA_DIR: mkdtempSync(join(tmpdir(), 'cdss-image-')) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output).toBe(2);
    for (const name of ['CDSS_AUTH_JWKS_URL', 'CDSS_WEBHOOK_SECRET', 'OPENEMR_URL', 'FHIR_URL', 'MYSQL_URL'])
      expect(output).toContain(name);
    expect(output).not.toMatch(/listening/);
  }, 60_000);
});
