// The compiled checks must never accept what zod refuses, and must accept the valid messages (or they save nothing).
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMessage, decodeMessage } from './codec.js';
import { compileFastCheck } from './fast-check.js';
import { MESSAGE_SCHEMAS, jobMessageSchema } from './protocol.js';
import { sampleRequest, sampleResult } from './testing.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function vectors(kind: 'valid' | 'invalid'): { file: string; message?: Json }[] {
  const dir = join(pkg, 'test-vectors', 'v1', kind);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((file) => ({ file, ...(JSON.parse(readFileSync(join(dir, file), 'utf8')) as { message?: Json }) }));
}

const checks = Object.fromEntries(
  Object.entries(MESSAGE_SCHEMAS).map(([type, schema]) => [type, compileFastCheck(schema)]),
);
const fast = (m: Json): boolean => {
  const type = typeof m === 'object' && m !== null && !Array.isArray(m) ? m['type'] : undefined;
  const check = typeof type === 'string' ? checks[type] : undefined;
  return check !== undefined && check(m);
};
const zodAccepts = (m: Json) => jobMessageSchema.safeParse(m);

/** Every value at every path replaced, removed, or joined by an unknown key: one message per mutation. */
function* mutations(message: Json): Generator<Json> {
  const long = (n: number, c = 'a') => c.repeat(n);
  const replacements: Json[] = [
    null,
    true,
    false,
    0,
    -1,
    -0.5,
    1.5,
    100,
    100.5,
    2 ** 53,
    -(2 ** 53),
    1e308,
    '',
    ' ',
    'x',
    '1.2.3',
    '01.2',
    '1.2.',
    'Patient/42',
    'Patient/',
    long(64, '1'),
    `1.${long(63, '2')}`,
    `1.${long(62, '2')}`,
    long(128),
    long(129),
    '\u{1F600}'.repeat(64),
    '\u{1F600}'.repeat(65),
    '\u{1F600}',
    randomUUID(),
    randomUUID().toUpperCase(),
    '00000000-0000-0000-0000-000000000000',
    '2026-11-26T06:00:00Z',
    '2026-11-26T06:00:00.123+01:00',
    '2026-11-26T06:00:00',
    '2026-11-26',
    'https://example.org/hook',
    ' https://example.org/hook',
    'ftp://example.org/hook',
    'cdss.ai-jobs',
    'analysis.accepted',
    'analysis.succeeded',
    'routine',
    'inference',
    'whole-tumour',
    'internal-error',
    [],
    [1],
    {},
    { x: 1 },
  ];
  function* at(value: Json, rebuild: (v: Json | undefined) => Json): Generator<Json> {
    for (const r of replacements) yield rebuild(r);
    yield rebuild(undefined as unknown as Json); // the key removed (or an array slot undefined)
    if (Array.isArray(value)) {
      yield rebuild([]);
      yield rebuild([...value, ...value]);
      for (let i = 0; i < value.length; i++)
        yield* at(value[i]!, (v) => rebuild(value.map((x, j) => (j === i ? (v as Json) : x))));
    } else if (typeof value === 'object' && value !== null) {
      yield rebuild({ ...value, unexpected: 1 });
      yield rebuild({ ...value, __proto__x: 1 });
      yield rebuild(JSON.parse(`{"__proto__": 1, ${JSON.stringify(value).slice(1)}`) as Json);
      for (const key of Object.keys(value))
        yield* at(value[key]!, (v) =>
          rebuild(
            v === undefined
              ? Object.fromEntries(Object.entries(value).filter(([k]) => k !== key))
              : { ...value, [key]: v },
          ),
        );
    }
  }
  yield* at(message, (v) => v as Json);
}

describe('compiled fast checks', () => {
  it('compile for every message type (otherwise every message pays for a full zod parse)', () => {
    for (const [type, check] of Object.entries(checks)) expect(check, type).toBeTypeOf('function');
  });

  it('accept every valid test vector, refuse every invalid one', () => {
    for (const { file, message } of vectors('valid')) {
      expect(fast(message!), file).toBe(true);
      expect(decodeMessage(JSON.stringify(message))).toMatchObject({ ok: true, message });
    }
    for (const { file, message } of vectors('invalid'))
      if (message !== undefined) expect(fast(message), file).toBe(false);
  });

  it('never accept what zod refuses, nor anything zod would change, over every mutation of every message', () => {
    const bases: Json[] = [
      ...vectors('valid').map((v) => v.message!),
      JSON.parse(
        JSON.stringify(
          sampleRequest({ callbackUrl: 'https://example.org/hook', deadline: '2026-12-01T00:00:00+02:00' }),
        ),
      ) as Json,
      JSON.parse(
        JSON.stringify(
          createMessage({
            type: 'analysis.succeeded',
            jobId: randomUUID(),
            workerId: 'w',
            attempt: 2,
            result: { ...sampleResult(), largestDiameterMm: 31.5 },
          }),
        ),
      ) as Json,
    ];
    let total = 0;
    let acceptedByFast = 0;
    let acceptedByZod = 0;
    for (const base of bases) {
      for (const m of mutations(base)) {
        if (m === undefined) continue; // the whole message removed
        // through JSON, as decodeMessage sees it (drops undefined slots and keys)
        const json = JSON.parse(JSON.stringify(m)) as Json;
        total++;
        const z4 = zodAccepts(json);
        if (z4.success) acceptedByZod++;
        if (!fast(json)) continue;
        acceptedByFast++;
        expect(z4.success, JSON.stringify(json)).toBe(true);
        expect(z4.data, JSON.stringify(json)).toEqual(json);
      }
    }
    expect(total).toBeGreaterThan(5_000);
    // not vacuous: most messages zod accepts are accepted without it
    expect(acceptedByFast).toBeGreaterThan(acceptedByZod * 0.8);
  });

  it('compile nothing they do not know: a refinement, a plain (stripping) object, a transform', () => {
    expect(compileFastCheck(z.string().refine((s) => s.length > 1))).toBeUndefined();
    expect(compileFastCheck(z.object({ a: z.string() }))).toBeUndefined();
    expect(compileFastCheck(z.strictObject({ a: z.string().transform((s) => s.trim()) }))).toBeUndefined();
    expect(compileFastCheck(z.strictObject({ a: z.email() }))).toBeUndefined();
    expect(compileFastCheck(z.strictObject({ a: z.int32() }))).toBeUndefined();
    expect(compileFastCheck(z.strictObject({ a: z.string().startsWith('x') }))).toBeUndefined();
  });

  it('leave strings whose length needs counting in code points to zod', () => {
    const check = compileFastCheck(z.strictObject({ s: z.string().max(4) }))!;
    expect(check({ s: 'abcd' })).toBe(true);
    expect(check({ s: '\u{1F600}\u{1F600}\u{1F600}' })).toBe(false); // 6 units, 3 code points: zod accepts
    expect(z.strictObject({ s: z.string().max(4) }).safeParse({ s: '\u{1F600}\u{1F600}\u{1F600}' }).success).toBe(true);
  });
});
