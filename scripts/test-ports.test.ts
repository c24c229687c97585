/**
 * GUIDE.md rule 9: network traffic in tests goes to 127.0.0.1 on ports below 32768. A listen on port 0 takes a port
 * from the kernel's ephemeral range (32768+), so no test, test helper or process a test starts may listen on 0: take
 * one from `freePort()` / `listenOnFreePort()` of `@cdss/core/testing` (Python: a random port below 32768).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const SCANNED = ['examples', 'packages', 'scripts', 'bench', 'tools', 'deploy'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.venv', '__pycache__', '.git', 'coverage', 'build']);

/** Test files, test helpers and what tests start (fixtures, benches, scripts). */
const isTestCode = (path: string): boolean =>
  /\.test\.[cm]?[jt]s$/.test(path) ||
  /(^|\/)(test|tests|__fixtures__|testing)\//.test(path) ||
  /(^|\/)(test-support|testing)\.[cm]?[jt]s$/.test(path) ||
  /(^|\/)test_[^/]*\.py$/.test(path) ||
  /^(bench|scripts)\/.*\.([cm]?[jt]s|py|sh)$/.test(path);

/** Listening on port 0, in the forms the code base uses (Node listen, option objects, env vars, Python bind). */
const PORT_ZERO = [
  /\.listen\(\s*0\s*[,)]/,
  /\bport:\s*0\s*[,}]/,
  /\bPORT['"]?\s*[:=]\s*['"]?0['"]?(?![\d.])/,
  /\(\s*["']127\.0\.0\.1["']\s*,\s*0\s*\)/,
  /--port[= ]0\b/,
];

/** Documented exceptions (path relative to the repository root): why each may name port 0. */
const EXCEPTIONS: Record<string, string> = {
  'scripts/test-ports.test.ts': 'this check: its patterns and messages',
};

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

describe('tests listen below 32768 (GUIDE.md rule 9)', () => {
  it('no test, test helper or test-started process listens on port 0', () => {
    const offenders: string[] = [];
    let scanned = 0;
    for (const top of SCANNED) {
      for (const path of files(join(root, top))) {
        const rel = relative(root, path);
        if (!isTestCode(rel) || rel in EXCEPTIONS) continue;
        scanned++;
        readFileSync(path, 'utf8')
          .split('\n')
          .forEach((line, index) => {
            if (PORT_ZERO.some((pattern) => pattern.test(line))) offenders.push(`${rel}:${index + 1}: ${line.trim()}`);
          });
      }
    }
    expect(scanned).toBeGreaterThan(100);
    expect(offenders, 'use freePort() / listenOnFreePort() from @cdss/core/testing instead of port 0').toEqual([]);
  });

  it('the check recognises each form of port 0', () => {
    const forms = [
      "server.listen(0, '127.0.0.1', ok)",
      'fhir.listen(0)',
      "new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' })",
      "env: { PORT: '0' }",
      'PORT=0 node server.js',
      'ThreadingHTTPServer(("127.0.0.1", 0), Hook)',
    ];
    for (const form of forms)
      expect(
        PORT_ZERO.some((pattern) => pattern.test(form)),
        form,
      ).toBe(true);
    for (const fine of ['server.listen(port)', 'port: 0.5', "PORT: '8080'", 'listen(10, host)'])
      expect(
        PORT_ZERO.some((pattern) => pattern.test(fine)),
        fine,
      ).toBe(false);
  });
});
