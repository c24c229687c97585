/**
 * Child processes for tests: started on a free loopback port, stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@cdss/core/testing';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A free TCP port below the kernel's ephemeral range (from `@cdss/core/testing`). */
export { freePort };

/** A started child process. */
export interface Child {
  process: ChildProcess;
  output: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a TypeScript entry point of this package with tsx and waits for a line on stdout.
 * @param script - path relative to the package
 * @param env - extra environment
 * @param readyPattern - stdout pattern meaning "ready"
 */
export async function startTsProcess(
  script: string,
  env: Record<string, string>,
  readyPattern: RegExp,
  timeoutMs = 60_000,
): Promise<Child> {
  const args = ['--conditions=@cdss/source', '--import', 'tsx', join(packageDir, script)];
  return startProcess(process.execPath, args, { cwd: packageDir, env, readyPattern, timeoutMs, name: script });
}

/**
 * Starts any program and waits for a line on stdout (e.g. the Python worker's `ready`).
 * @param command - the executable
 * @param args - its arguments
 * @param options - working directory, extra environment, the "ready" pattern, how long to wait, a name for errors
 */
export async function startProcess(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string>; readyPattern: RegExp; timeoutMs?: number; name?: string },
): Promise<Child> {
  const { readyPattern, timeoutMs = 60_000 } = options;
  const script = options.name ?? command;
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready in ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const check = (): void => {
      if (readyPattern.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${output}`));
    });
  });
  return {
    process: child,
    output: () => output,
    stop: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
