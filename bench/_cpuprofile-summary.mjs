#!/usr/bin/env node
// Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by where the code comes from
// (node internals, each npm package, each workspace package), optionally only over the last N ms of the profile
// (the load phase of a script that exits when its load ends).
//
//   node bench/_cpuprofile-summary.mjs <file.cpuprofile> [--last-ms N] [--top N]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
if (!file) {
  process.stderr.write('usage: _cpuprofile-summary.mjs <file.cpuprofile> [--last-ms N] [--top N]\n');
  process.exit(2);
}
const lastMs = option('--last-ms', Infinity);
const top = option('--top', 25);

/** @type {{nodes: Array<{id: number, callFrame: {functionName: string, url: string, lineNumber: number}, hitCount?: number}>, startTime: number, endTime: number, samples: number[], timeDeltas: number[]}} */
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

// Sample times (µs), from the deltas; keep the samples of the window.
const from = profile.endTime - lastMs * 1000;
const selfUs = new Map();
let t = profile.startTime;
let windowUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  const next = i + 1 < profile.samples.length ? (profile.timeDeltas[i + 1] ?? 0) : 0;
  if (t < from) continue;
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + next);
  windowUs += next;
}

/** Where a frame's code comes from. */
function origin(url, name) {
  if (!url) return name === '(garbage collector)' ? 'gc' : name.startsWith('(') ? name : 'native/v8';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const ws = /\/(packages|examples)\/([^/]+)\//.exec(url);
  if (ws) return `${ws[1]}/${ws[2]}`;
  const bench = /\/bench\//.exec(url);
  return bench ? 'bench' : url;
}

const fns = new Map();
const origins = new Map();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = origin(url, functionName);
  const short = url
    ? `${url.replace(/^.*\/(node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?)?/, '')}:${lineNumber + 1}`
    : '';
  const key = `${functionName || '(anonymous)'} ${short}`;
  fns.set(key, { us: (fns.get(key)?.us ?? 0) + us, where });
  origins.set(where, (origins.get(where) ?? 0) + us);
}
// Inclusive time: each sample counts once for every distinct function on its stack.
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (node) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const short = url
    ? `${url.replace(/^.*\/(node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?)?/, '')}:${lineNumber + 1}`
    : '';
  return `${functionName || '(anonymous)'} ${short}`;
};
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const node = byId.get(at);
    if (!node) break;
    const key = `${keyOf(node)}  [${origin(node.callFrame.url, node.callFrame.functionName)}]`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}
const pct = (us) => `${((100 * us) / Math.max(windowUs, 1)).toFixed(1).padStart(5)}%`;
process.stdout.write(`profile ${file}: ${(windowUs / 1e6).toFixed(2)} s of samples in the window\n`);
process.stdout.write('self time by origin:\n');
for (const [where, us] of [...origins].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`  ${pct(us)}  ${where}\n`);
process.stdout.write(`top ${top} functions by self time:\n`);
for (const [key, { us, where }] of [...fns].sort((a, b) => b[1].us - a[1].us).slice(0, top))
  process.stdout.write(`  ${pct(us)}  ${key}  [${where}]\n`);
process.stdout.write(
  `top ${top} functions by inclusive time (self and callees), without the event loop's own frames:\n`,
);
for (const [key, us] of [...inclusive]
  .filter(([key]) => !/^\((root|program|idle|garbage collector)\)/.test(key) && !/\[node internals\]$/.test(key))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  process.stdout.write(`  ${pct(us)}  ${key}\n`);
