#!/usr/bin/env node
// Runs one benchmark: `npm run bench -- <name> [args...]` runs bench/<name>.ts under tsx with the
// `@cdss/source` export condition, so workspace packages load from their TypeScript sources (no build).
// With no name it lists the benchmarks. See bench/README.md for the output format.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [name, ...args] = process.argv.slice(2);

/** Bench files and the first line of their leading doc comment. */
function listBenches() {
  return readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(here, file), 'utf8');
      const summary = /\/\*\*\s*\n?\s*\*?\s*([^\n]*)/.exec(text)?.[1]?.trim() ?? '';
      return { name: file.slice(0, -3), summary };
    });
}

const benches = listBenches();
if (name === undefined || name === '--list' || name === '-l') {
  process.stdout.write('Benchmarks (run one with `npm run bench -- <name>`):\n');
  for (const b of benches) process.stdout.write(`  ${b.name.padEnd(24)} ${b.summary}\n`);
  process.exit(0);
}
if (!/^[a-z0-9][a-z0-9-]*$/.test(name) || !benches.some((b) => b.name === name)) {
  process.stderr.write(`Unknown benchmark "${name}". Known: ${benches.map((b) => b.name).join(', ') || '(none)'}\n`);
  process.exit(2);
}

// tsx is a root devDependency: resolve it from here so the bench runs whatever the working directory.
const tsx = import.meta.resolve('tsx');
const child = spawn(
  process.execPath,
  ['--conditions=@cdss/source', '--import', tsx, join(here, `${name}.ts`), ...args],
  {
    stdio: 'inherit',
    cwd: here,
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
