#!/usr/bin/env node
/**
 * Runs every root npm script the README documents, with only Node.js and npm on the PATH (any pnpm on it is taken
 * off, and `pnpm` must not resolve), the way a new contributor or an integrator would (issue 22, item 3).
 *
 *   node scripts/check-root-scripts.mjs            # here: CI runs it in its fresh clone of main
 *   node scripts/check-root-scripts.mjs --clone    # in a fresh `git clone` of HEAD, in a temporary folder
 *   node scripts/check-root-scripts.mjs --only lint,docs
 *
 * Also checks that every script in package.json goes through scripts/bootstrap.mjs (or needs no pnpm at all), and
 * that every `npm run <x>` in the README exists. The first script run in a clone without .tools/ installs pnpm with
 * npm, so this uses the npm registry: it is a CI step, not part of `npm test`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;
const log = (m) => process.stderr.write(`[root-scripts] ${m}\n`);
const failures = [];

/** Scripts that need no pnpm, so may run without the bootstrap. */
const WITHOUT_BOOTSTRAP = new Set(['services']);

let root = here;
if (args.includes('--clone')) {
  root = mkdtempSync(join(tmpdir(), 'cdss-clone-'));
  const r = spawnSync('git', ['clone', '--quiet', '--no-hardlinks', here, root], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('git clone failed');
  log(`fresh clone of HEAD in ${root}`);
}

// PATH with no pnpm on it (a global pnpm would hide a script that forgot the bootstrap).
const isExecutable = (p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const PATH = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((d) => d && !isExecutable(join(d, 'pnpm')))
  .join(delimiter);
const env = { ...process.env, PATH, npm_config_update_notifier: 'false' };
delete env.CDSS_PNPM;
if (spawnSync('pnpm', ['--version'], { env }).error === undefined) throw new Error('pnpm still resolves on the PATH');

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const [name, command] of Object.entries(manifest.scripts)) {
  if (!WITHOUT_BOOTSTRAP.has(name) && !command.startsWith('node scripts/bootstrap.mjs ')) {
    failures.push(`script ${name} does not go through scripts/bootstrap.mjs: ${command}`);
  }
}
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const documented = new Set([...readme.matchAll(/npm run ([a-z:]+)/g)].map((m) => m[1]));
for (const name of documented)
  if (!manifest.scripts[name]) failures.push(`README documents npm run ${name}: no such script`);

/** A free port in 20000–31999, below the kernel's ephemeral range (GUIDE.md rule 9), as @cdss/core/testing's freePort. */
async function freePort() {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found in 20000-31999');
}

function npm(argv, extraEnv = {}) {
  const started = Date.now();
  const r = spawnSync('npm', argv, { cwd: root, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 256 << 20 });
  const seconds = (Date.now() - started) / 1000;
  return { ...r, seconds, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Whether any process of the group `pgid` is still there (signal 0 checks without sending anything). */
function processGroupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * A long-running root script on a free port until `path` answers 2xx with a body containing `expect`, then stopped
 * (its process group, which this started).
 */
async function checkServer(argv, { path, expect }) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'cdss-data-'));
  const started = Date.now();
  const child = spawn('npm', [...argv.map((a) => a.replace('{port}', String(port)))], {
    cwd: root,
    env: { ...env, PORT: String(port), HOST: '127.0.0.1', CDSS_DATA_DIR: dataDir },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // If this script is stopped meanwhile, stop the server too (its process group, which this started).
  const stop = () => {
    if (child.exitCode === null) process.kill(-child.pid, 'SIGTERM');
  };
  process.once('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((res) => child.once('exit', res));
  let ok = false;
  while (Date.now() - started < 300_000 && child.exitCode === null) {
    ok = await fetch(`http://127.0.0.1:${port}${path}`).then(
      async (r) => r.ok && (await r.text()).includes(expect),
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  stop();
  await exited;
  // npm may exit before the server it started (same process group) has finished shutting down, and a server still
  // writing its data folder makes the removal fail (ENOTEMPTY): wait until the whole group is gone (up to 30 s).
  for (let waited = 0; waited < 30_000 && processGroupAlive(child.pid); waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
  }
  process.removeListener('exit', stop);
  rmSync(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  return { status: ok ? 0 : 1, seconds: (Date.now() - started) / 1000, output };
}

const git = (argv) => spawnSync('git', argv, { cwd: root, encoding: 'utf8' }).stdout.trim();
const CHECKS = [
  ['setup', () => npm(['run', 'setup'])],
  ['build', () => npm(['run', 'build'])],
  ['typecheck', () => npm(['run', 'typecheck'])],
  ['lint', () => npm(['run', 'lint'])],
  [
    'format',
    () => {
      const before = git(['status', '--porcelain']);
      const r = npm(['run', 'format']);
      const after = git(['status', '--porcelain']);
      return before === after ? r : { ...r, status: 1, output: `${r.output}\nformat changed files:\n${after}` };
    },
  ],
  ['docs', () => npm(['run', 'docs'])],
  [
    'docs:dev',
    () =>
      checkServer(['run', 'docs:dev', '--', '--host', '127.0.0.1', '--port', '{port}', '--strictPort'], {
        // the dev server answers every page with the same shell; the page itself is the module of its .md
        path: '/guides/getting-started.md',
        expect: 'The two commands',
      }),
  ],
  ['test', () => npm(['test', '--', 'packages/core/src/errors.test.ts'])],
  ['start', () => checkServer(['start'], { path: '/healthz', expect: 'ok' })],
  ['bench', () => npm(['run', 'bench', '--', '--list'])],
  [
    'soak',
    () => {
      // The soak itself runs for minutes (.ci/run runs a 2-minute one next); here: it starts through the bootstrap
      // without pnpm and refuses a bad duration with its usage (exit 2) before starting anything.
      const r = npm(['run', 'soak', '--', '--minutes', '0']);
      return r.output.includes('usage: npm run soak') ? { ...r, status: 0 } : { ...r, status: 1 };
    },
  ],
  ['services', () => npm(['run', 'services', '--', 'env'])],
  ['changeset', () => npm(['run', 'changeset', '--', '--version'])],
  ['check:packages', () => npm(['run', 'check:packages'])],
];
for (const name of Object.keys(manifest.scripts)) {
  if (!CHECKS.some(([n]) => n === name)) failures.push(`script ${name} has no check in scripts/check-root-scripts.mjs`);
}

const timings = {};
for (const [name, check] of CHECKS) {
  if (only && !only.includes(name)) continue;
  log(`npm ${name === 'start' || name === 'test' ? '' : 'run '}${name} ...`);
  const r = await check();
  timings[name] = r.seconds;
  if (r.status !== 0) failures.push(`npm run ${name} failed (rc ${r.status}):\n${r.output.slice(-4000)}`);
  else log(`npm run ${name}: ok in ${r.seconds.toFixed(1)} s`);
}
if (root !== here && !args.includes('--keep')) rmSync(root, { recursive: true, force: true });
for (const f of failures) process.stderr.write(`FAIL ${f}\n`);
process.stdout.write(
  `${JSON.stringify({ node: process.versions.node, clone: root !== here, timings, failures: failures.length })}\n`,
);
process.exit(failures.length ? 1 : 0);
