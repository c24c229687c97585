/**
 * Where the Python worker's venv is (`install.sh` makes it; `CDSS_PYTHON_WORKER_PYTHON` points elsewhere), and whether
 * it is there: without it a suite skips with a message, except under CI=true, where loading the suite fails.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** examples/python-worker. */
export const workerDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The venv's interpreter. */
export const python = process.env['CDSS_PYTHON_WORKER_PYTHON'] ?? join(workerDir, '.venv', 'bin', 'python');

/**
 * Whether the venv is there, for `describe.runIf`.
 * @param suite - named in the skip message
 * @throws Error under CI=true when it is missing
 */
export function venvAvailable(suite: string): boolean {
  if (existsSync(python)) return true;
  const reason = `the Python worker's venv is missing (${python}; run \`bash examples/python-worker/install.sh\`)`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${reason}`);
  process.stderr.write(`[skip] ${suite}: ${reason}\n`);
  return false;
}
