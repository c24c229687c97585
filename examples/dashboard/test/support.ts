/**
 * Test support: the dashboard build, the reference server in sandbox mode as a child process (free port below 32768,
 * temp data dir, stopped by PID), and Debian's Chromium.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@cdss/core/testing';

export const dashboardDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = join(dashboardDir, '..', '..');
export const artifactsDir = join(dashboardDir, 'test-artifacts');

/** Debian's Chromium (or CHROMIUM_PATH), if installed. */
export const chromiumPath = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => Boolean(p && existsSync(p)),
);

/** Launch flags for headless Chromium in a container (no sandbox user namespaces, no GPU, no outside traffic). */
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((entry) => newest(join(path, entry))));
}

/** Builds the dashboard when dist/ is missing or older than its sources (the same rule as scripts/bootstrap.mjs). */
export function ensureBuild(): void {
  const index = join(dashboardDir, 'dist', 'index.html');
  const sources = Math.max(
    newest(join(dashboardDir, 'src')),
    newest(join(dashboardDir, 'index.html')),
    newest(join(dashboardDir, 'public')),
    newest(join(repoRoot, 'packages', 'client', 'src')),
  );
  if (
    existsSync(index) &&
    statSync(join(dashboardDir, 'dist')).mtimeMs >= sources &&
    statSync(index).mtimeMs >= sources
  )
    return;
  const vite = join(dashboardDir, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'error'], {
    cwd: dashboardDir,
    encoding: 'utf8',
    // vitest sets NODE_ENV=test, which would make a development build (React's checks, no service worker).
    env: { ...process.env, NODE_ENV: 'production' },
  });
  if (result.status !== 0) throw new Error(`dashboard build failed:\n${result.stdout}\n${result.stderr}`);
}

/** A free TCP port below the kernel's ephemeral range (from `@cdss/core/testing`). */
export { freePort };

/** The running server. */
export interface SandboxServer {
  url: string;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts the reference server in sandbox mode, serving this dashboard's dist/. */
export async function startSandboxServer(): Promise<SandboxServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cdss-dashboard-e2e-'));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--conditions=@cdss/source', '--import', 'tsx', join(repoRoot, 'examples', 'reference-server', 'src', 'main.ts')],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        CDSS_MODE: 'sandbox',
        HOST: '127.0.0.1',
        PORT: String(port),
        CDSS_DATA_DIR: dataDir,
        CDSS_LOG_LEVEL: 'warn',
        CDSS_SANDBOX_STUDIES: '3',
        CDSS_DASHBOARD_DIR: join(dashboardDir, 'dist'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 8_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready in 90 s:\n${output}`)), 90_000);
      const check = (): void => {
        if (/CDSS reference server \(sandbox mode\) at/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${output}`));
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, process: child, output: () => output, stop };
}
