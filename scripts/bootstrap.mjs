#!/usr/bin/env node
/**
 * Every root script runs through here, so that Node.js and npm are all a machine needs (README: "two commands").
 * It installs the pinned pnpm into .tools/ when no pnpm of that version is on the PATH, installs the workspace from
 * the lockfile, builds what is stale where the task needs the build, then runs the task.
 *
 *   node scripts/bootstrap.mjs start [server args...]      npm start
 *   node scripts/bootstrap.mjs test  [vitest args...]      npm test
 *   node scripts/bootstrap.mjs setup                       npm run setup
 *   node scripts/bootstrap.mjs build | typecheck | lint | format | docs | docs-dev | bench | soak | changeset | check-packages
 */
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM_VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const [command = 'setup', ...rest] = process.argv.slice(2);
/** Builds every package and example (tsup); `npm run build`, and the first step of a task that needs dist/. */
const BUILD = ['-r', '--filter', './packages/*', '--filter', './examples/*', 'build'];

function log(message) {
  process.stderr.write(`[cdss] ${message}\n`);
}

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function versionOf(cmd) {
  const result = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** A pnpm of the pinned version: the one on the PATH, or one installed under .tools/ (no root needed). */
function ensurePnpm() {
  if (versionOf('pnpm') === PNPM_VERSION) return 'pnpm';
  const local = join(root, '.tools', 'pnpm', 'node_modules', '.bin', 'pnpm');
  if (existsSync(local) && versionOf(local) === PNPM_VERSION) return local;
  log(`installing pnpm ${PNPM_VERSION} into .tools/pnpm`);
  run(
    'npm',
    [
      'install',
      '--prefix',
      join(root, '.tools', 'pnpm'),
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      `pnpm@${PNPM_VERSION}`,
    ],
    {
      env: { ...process.env, npm_config_update_notifier: 'false' },
    },
  );
  if (versionOf(local) !== PNPM_VERSION) throw new Error(`pnpm ${PNPM_VERSION} did not install into ${local}`);
  return local;
}

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}

/** True when some package or example has sources newer than its dist/ (or no dist/ at all). */
function buildIsStale() {
  const dirs = ['packages', 'examples'].flatMap((group) =>
    existsSync(join(root, group)) ? readdirSync(join(root, group)).map((d) => join(root, group, d)) : [],
  );
  return dirs.some((dir) => {
    if (!existsSync(join(dir, 'package.json'))) return false;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (!manifest.scripts?.build) return false;
    const dist = join(dir, 'dist');
    if (!existsSync(dist)) return true;
    const sources = Math.max(
      newestMtime(join(dir, 'src')),
      newestMtime(join(dir, 'package.json')),
      newestMtime(join(root, 'pnpm-lock.yaml')),
    );
    // dist/'s newest file, not the folder's own mtime: a rebuild that rewrites the same files in place (none added
    // or removed) leaves the folder's mtime as it was, so the package would look stale for ever after.
    return sources > newestMtime(dist);
  });
}

/**
 * Installs what a task needs: the pinned pnpm and the workspace's packages, and, unless `build` is false, builds the
 * packages whose sources are newer than their dist/.
 */
function setup({ build = true } = {}) {
  const pnpm = ensurePnpm();
  // pnpm 12 reads only auth and registry keys from .npmrc: node-gyp must be told where Node's headers are.
  const env = { ...process.env };
  // Workspace scripts call `pnpm` by name (`pnpm -r build`): put the pinned one first on their PATH.
  if (pnpm !== 'pnpm') env.PATH = `${dirname(pnpm)}${delimiter}${env.PATH ?? ''}`;
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  run(pnpm, ['install', '--frozen-lockfile', '--reporter=append-only'], { env });
  if (build && buildIsStale()) {
    log('building packages');
    run(pnpm, BUILD, { env });
  }
  return { pnpm, env };
}

/**
 * The root scripts that only need the workspace installed (and, with `build`, built): each a list of commands, `pnpm`
 * standing for the pinned pnpm and `node` for this Node.js. Arguments after `--` go to the last command.
 */
const TASKS = {
  build: { build: false, steps: [['pnpm', ...BUILD]] },
  typecheck: {
    build: false,
    steps: [
      ['pnpm', '-r', 'typecheck'],
      ['pnpm', 'exec', 'tsc', '-p', 'scripts/services'],
      ['pnpm', 'exec', 'tsc', '-p', 'deploy'],
      ['pnpm', 'exec', 'tsc', '-p', 'scripts/docs'],
    ],
  },
  lint: {
    build: false,
    steps: [
      ['pnpm', 'exec', 'eslint', '.'],
      ['pnpm', 'exec', 'prettier', '--check', '.'],
    ],
  },
  format: { build: false, steps: [['pnpm', 'exec', 'prettier', '--write', '.']] },
  // the docs site: typedoc's Markdown API reference into docs/api, then VitePress (a dead link to a page fails the
  // build), then every link and #anchor of the built HTML (scripts/docs/check-links.mjs)
  docs: {
    build: true,
    steps: [
      ['pnpm', 'exec', 'typedoc'],
      ['pnpm', 'exec', 'vitepress', 'build', 'docs'],
      ['node', 'scripts/docs/check-links.mjs'],
    ],
  },
  'docs-dev': {
    build: true,
    steps: [
      ['pnpm', 'exec', 'typedoc'],
      ['pnpm', 'exec', 'vitepress', 'dev', 'docs'],
    ],
  },
  bench: { build: false, steps: [['node', 'bench/run.mjs']] },
  // The two-instance deployment under mixed load and restarts (examples/reference-server/test/soak.ts).
  soak: {
    build: false,
    steps: [['node', '--conditions=@cdss/source', '--import', 'tsx', 'examples/reference-server/test/soak.ts']],
  },
  changeset: { build: false, steps: [['pnpm', 'exec', 'changeset']] },
  'check-packages': { build: true, steps: [['node', 'scripts/packaging/check-packages.mjs']] },
};

/**
 * True when `version` satisfies `range`, a union (`||`) of `^x.y.z` and `>=x[.y[.z]]`: the forms engines.node uses.
 */
function satisfies(version, range) {
  const parse = (v) => [...v.split('.').map(Number), 0, 0].slice(0, 3);
  const compare = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const v = parse(version);
  return range.split('||').some((part) => {
    const [, op, min] = /^\s*(\^|>=)(\d+(?:\.\d+){0,2})\s*$/.exec(part) ?? [];
    if (!op) throw new Error(`engines.node: cannot read ${part}`);
    return compare(v, parse(min)) >= 0 && (op === '>=' || v[0] === parse(min)[0]);
  });
}

/**
 * Warns (without stopping: a machine may still have only an older Node.js) when this Node.js is outside
 * engines.node: the lines CI runs the whole suite on (22 and 24; Node 20 is past end of life since April 2026).
 */
function warnOnUnsupportedNode() {
  const range = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node;
  if (satisfies(process.versions.node, range)) return;
  log(`warning: Node.js ${process.versions.node} is not supported (engines.node ${range}): install Node 22 or 24`);
}

const task = TASKS[command];
warnOnUnsupportedNode();
if (!task && !['start', 'test', 'setup'].includes(command)) {
  log(`unknown command ${command}: use start, test, setup or ${Object.keys(TASKS).join(', ')}`);
  process.exit(2);
}
const started = Date.now();
const { pnpm, env } = setup({ build: task ? task.build : true });
log(`setup done in ${((Date.now() - started) / 1000).toFixed(1)} s`);

if (task) {
  task.steps.forEach(([cmd, ...argv], i) => {
    const last = i === task.steps.length - 1;
    const program = cmd === 'pnpm' ? pnpm : cmd === 'node' ? process.execPath : cmd;
    run(program, [...argv, ...(last ? rest : [])], { env: { ...env, CDSS_PNPM: pnpm } });
  });
} else if (command === 'start') {
  const child = spawn(process.execPath, [join(root, 'examples', 'reference-server', 'dist', 'main.js'), ...rest], {
    cwd: root,
    stdio: 'inherit',
    env,
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  // `npm start` runs us through `sh -c`; a SIGTERM sent to npm (a process manager stopping it) reaches that shell,
  // which dies without passing it on. Notice that our parent is gone and stop the server rather than orphan it.
  const parent = process.ppid;
  const watchParent = setInterval(() => {
    if (process.ppid !== parent) {
      log('parent process exited: stopping the server');
      child.kill('SIGTERM');
    }
  }, 500);
  watchParent.unref();
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else if (command === 'test') {
  run(pnpm, ['exec', 'vitest', 'run', ...rest], { env });
}
