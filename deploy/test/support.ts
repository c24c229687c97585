/**
 * Helpers shared by the deploy/ tests: finding the service binaries, free ports below 32768, starting the real
 * reference server as a child process, and small HTTP(S) helpers that do not decode bodies (so compression is
 * observable).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@cdss/core/testing';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The deploy/ folder. */
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');

/** Absolute path of an executable on the PATH (plus the sbin folders), or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Looks up the binaries a suite needs. Under `CI=true` a missing one throws (CI installs them through
 * scripts/services/services.sh install); elsewhere the suite is skipped with one line saying what to install.
 * @returns the paths by name, or undefined when something is missing outside CI
 */
export function requireBinaries<T extends string>(
  suite: string,
  names: readonly T[],
  apt: string,
): Record<T, string> | undefined {
  const found = {} as Record<T, string>;
  const missing: string[] = [];
  for (const name of names) {
    const path = which(name);
    if (path) found[name] = path;
    else missing.push(name);
  }
  if (missing.length === 0) return found;
  const reason = `${suite}: ${missing.join(', ')} not found (install with \`apt-get install --no-install-recommends ${apt}\`, or \`npm run services -- install\`)`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${reason}`);
  process.stderr.write(`[skip] ${reason}\n`);
  return undefined;
}

/** A fresh temporary folder. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `cdss-deploy-${prefix}-`));
}

/** A free TCP port below the kernel's ephemeral range (shared with the other suites, from `@cdss/core/testing`). */
export { freePort };

/** The environment variables that bound a Node.js process's memory (docs/guides/deploy.md, "Memory"). */
export const MEMORY_ENV = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'] as const;

/**
 * The memory settings an image sets with `ENV` (`NODE_OPTIONS`, `MALLOC_ARENA_MAX`), read from its Dockerfile: the
 * one place they are written, so the soak and the two-instance suite run the processes the way the images do.
 * @param image - `server` or `worker` (deploy/docker/<image>.Dockerfile)
 * @throws when the Dockerfile lacks one of them
 */
export function imageMemoryEnv(image: 'server' | 'worker'): Record<(typeof MEMORY_ENV)[number], string> {
  const file = join(DEPLOY_DIR, 'docker', `${image}.Dockerfile`);
  // ENV instructions, their continuation lines joined
  const text = readFileSync(file, 'utf8').replace(/\\\n\s*/g, ' ');
  const env: Partial<Record<(typeof MEMORY_ENV)[number], string>> = {};
  for (const line of text.split('\n').filter((l) => /^ENV\s/.test(l)))
    for (const name of MEMORY_ENV) {
      const value = new RegExp(`(?:^|\\s)${name}=("[^"]*"|\\S+)`).exec(line)?.[1];
      if (value !== undefined) env[name] = value.replace(/^"|"$/g, '');
    }
  const missing = MEMORY_ENV.filter((name) => env[name] === undefined);
  if (missing.length > 0) throw new Error(`${file} sets no ${missing.join(', ')}`);
  return env as Record<(typeof MEMORY_ENV)[number], string>;
}

/** Thrown by a `waitFor` check to stop waiting at once (the awaited thing can no longer happen). */
export class GiveUp extends Error {}

/** Polls `check` every 100 ms until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? ` (last error: ${lastError.message})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A child process whose output is kept (bounded) for assertions and failure messages. */
export interface Spawned {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** Sends a signal to this process (by PID) and waits until it has exited. */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/** Spawns a long-running process, keeping the last 1 MiB of its stdout and stderr. */
export function spawnService(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  let out = '';
  let err = '';
  const cap = (s: string): string => (s.length > 1 << 20 ? s.slice(-(1 << 20)) : s);
  child.stdout?.on('data', (chunk: Buffer) => (out = cap(out + chunk.toString('utf8'))));
  child.stderr?.on('data', (chunk: Buffer) => (err = cap(err + chunk.toString('utf8'))));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let alive = true;
  void exited.then(() => (alive = false));
  return {
    child,
    pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (!alive) return;
      process.kill(pid, signal);
      const timer = setTimeout(() => alive && process.kill(pid, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to completion. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Writes a self-signed certificate for `localhost` and 127.0.0.1 (`fullchain.pem`, `privkey.pem`) into `certDir`.
 * @param openssl - the openssl binary
 * @param certDir - created if missing
 * @returns the certificate (PEM), to trust as the CA
 */
export function selfSignedCertificate(openssl: string, certDir: string): string {
  mkdirSync(certDir, { recursive: true });
  const cert = run(openssl, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    join(certDir, 'privkey.pem'),
    '-out',
    join(certDir, 'fullchain.pem'),
  ]);
  if (cert.status !== 0) throw new Error(`openssl req failed: ${cert.stderr}`);
  return readFileSync(join(certDir, 'fullchain.pem'), 'utf8');
}

/** A response with its raw (undecoded) body. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: () => string;
  tlsProtocol?: string | null;
}

/** One HTTP or HTTPS request; the body is returned as received (no decompression, no redirects followed). */
export function fetchRaw(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    ca?: string | Buffer;
    localAddress?: string;
    servername?: string;
  } = {},
): Promise<RawResponse> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((done, fail) => {
    const req = send(
      target,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        ...(options.servername ? { servername: options.servername } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const socket = res.socket as { getProtocol?: () => string | null };
          done({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: () => body.toString('utf8'),
            tlsProtocol: typeof socket.getProtocol === 'function' ? socket.getProtocol() : undefined,
          });
        });
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.setTimeout(30_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

/** The reference server, running as a child process. */
export interface ReferenceServer extends Spawned {
  port: number;
  url: string;
  dataDir: string;
}

/**
 * Starts the real reference server (sandbox mode, no worker, no sample studies) on a free port below 32768 and waits
 * for /healthz.
 * @param env - extra environment (e.g. CDSS_DASHBOARD_DIR)
 * @param fixedPort - a port reserved earlier with {@link freePort} (default: a new one)
 */
export async function startReferenceServer(
  env: Record<string, string> = {},
  fixedPort?: number,
): Promise<ReferenceServer> {
  const port = fixedPort ?? (await freePort());
  const dataDir = tempDir('server');
  const spawned = spawnService(
    process.execPath,
    ['--conditions=@cdss/source', '--import', 'tsx', 'examples/reference-server/src/main.ts'],
    {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        CDSS_DATA_DIR: dataDir,
        CDSS_LOG_LEVEL: 'warn',
        CDSS_SANDBOX_STUDIES: '0',
        CDSS_WORKER: 'off',
        ...env,
      },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  let exitCode: number | null | undefined;
  void spawned.exited.then((code) => (exitCode = code));
  try {
    await waitFor(
      `the reference server on ${url}/healthz`,
      async () => {
        if (exitCode !== undefined)
          throw new GiveUp(`the server exited with ${exitCode}: ${spawned.stderr().slice(-2000)}`);
        const res = await fetchRaw(`${url}/healthz`);
        return res.status === 200;
      },
      90_000,
    );
  } catch (error) {
    await spawned.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const stop = async (signal?: NodeJS.Signals): Promise<void> => {
    await spawned.stop(signal);
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { ...spawned, stop, port, url, dataDir };
}

/** A sandbox bearer token for a demo user, asked of the server at `baseUrl` (directly or through nginx). */
export async function sandboxToken(baseUrl: string, ca?: string, userId = 'demo-physician'): Promise<string> {
  const res = await fetchRaw(`${baseUrl}/api/sandbox/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
    ...(ca ? { ca } : {}),
  });
  if (res.status !== 200) throw new Error(`token request answered ${res.status}: ${res.text().slice(0, 200)}`);
  const token = (JSON.parse(res.text()) as { access_token?: unknown }).access_token;
  if (typeof token !== 'string') throw new Error('token response without access_token');
  return token;
}
