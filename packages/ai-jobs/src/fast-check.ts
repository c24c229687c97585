/**
 * Allocation-free validity checks compiled from the protocol's zod schemas, for data fresh from `JSON.parse`.
 *
 * zod builds a result object, an issue list and a copy of every object it parses: about 5 KB of garbage per
 * message, which made parsing and the garbage collection after it the largest cost of a quick job. A compiled check
 * walks the same schema definition and answers only "valid as it is" (`true`) or "not sure" (`false`); on `false`
 * the caller parses with zod, which decides and explains. So the check may refuse more than zod (it answers `false`
 * for any string whose length it cannot settle without counting code points, and for anything it was not written
 * for) but must never accept what zod refuses: it is compiled only from the node types, checks and string formats
 * listed below, and a schema using anything else gets no compiled check at all. `fast-check.test.ts` holds it to
 * zod on the test vectors and on thousands of mutated messages.
 *
 * Only for JSON data (plain objects, arrays, strings, finite numbers, booleans, null), where zod's output equals its
 * input: a value that passes is used as it is, without zod's copy.
 * @packageDocumentation
 */
import type { z } from 'zod';

/** True when the value is valid as it is; false when unsure (then ask zod). */
export type FastCheck = (value: unknown) => boolean;

/** The parts of a zod 4 schema definition read here (zod's internal `_zod.def`, typed loosely). */
interface Def {
  readonly type: string;
  readonly checks?: readonly Node[];
  readonly check?: string;
  readonly format?: string;
  readonly pattern?: unknown;
  readonly coerce?: boolean;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly value?: unknown;
  readonly inclusive?: boolean;
  readonly shape?: Readonly<Record<string, Node>>;
  readonly catchall?: Node;
  readonly innerType?: Node;
  readonly element?: Node;
  readonly values?: readonly unknown[];
  readonly entries?: Readonly<Record<string, unknown>>;
  readonly keyType?: Node;
  readonly valueType?: Node;
  readonly partial?: boolean;
  readonly mode?: string;
}
interface Node {
  readonly _zod: { readonly def: Def };
}

/** String formats whose whole check is their `pattern` (zod's `$ZodStringFormat` with no check of its own). */
const PATTERN_FORMATS = new Set(['regex', 'uuid', 'guid', 'datetime']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function patternCheck(def: Def): FastCheck | undefined {
  if (!(def.pattern instanceof RegExp) || def.format === undefined || !PATTERN_FORMATS.has(def.format))
    return undefined;
  const pattern = def.pattern;
  return (v) => {
    pattern.lastIndex = 0;
    return pattern.test(v as string);
  };
}

/**
 * z.url(): zod parses the URL (and trims the input), so ask zod itself, and accept only what it returns unchanged.
 * Rare in practice (only `callbackUrl`), so its allocation does not matter.
 */
function urlCheck(node: Node): FastCheck {
  const schema = node as unknown as z.ZodType;
  return (v) => {
    const result = schema.safeParse(v);
    return result.success && result.data === v;
  };
}

/** A check of zod's `checks` list on a string, number or array (already of the right type), or undefined. */
function checkOf(node: Node, kind: 'string' | 'number' | 'array'): FastCheck | undefined {
  const def = node._zod.def;
  switch (def.check) {
    case 'max_length': {
      if (kind === 'number' || typeof def.maximum !== 'number') return undefined;
      const max = def.maximum;
      // zod counts a string's code points; UTF-16 units are never fewer, so at most `max` units is certainly fine
      return (v) => (v as string | unknown[]).length <= max;
    }
    case 'min_length': {
      if (kind === 'number' || typeof def.minimum !== 'number') return undefined;
      const min = def.minimum;
      // a code point is one or two units: ⌈units / 2⌉ code points at least
      return kind === 'array'
        ? (v) => (v as unknown[]).length >= min
        : (v) => Math.ceil((v as string).length / 2) >= min;
    }
    case 'string_format':
      return kind === 'string' ? patternCheck(def) : undefined;
    case 'greater_than': {
      if (kind !== 'number' || typeof def.value !== 'number') return undefined;
      const bound = def.value;
      return def.inclusive ? (v) => (v as number) >= bound : (v) => (v as number) > bound;
    }
    case 'less_than': {
      if (kind !== 'number' || typeof def.value !== 'number') return undefined;
      const bound = def.value;
      return def.inclusive ? (v) => (v as number) <= bound : (v) => (v as number) < bound;
    }
    default:
      return undefined;
  }
}

function all(checks: readonly FastCheck[]): FastCheck {
  return (v) => {
    for (const check of checks) if (!check(v)) return false;
    return true;
  };
}

function compileNode(node: Node): FastCheck | undefined {
  const def = node._zod.def;
  if (def.coerce) return undefined;
  const kind = def.type === 'string' || def.type === 'number' || def.type === 'array' ? def.type : undefined;
  const checks: FastCheck[] = [];
  if (kind === undefined) {
    if (def.checks && def.checks.length > 0) return undefined; // refinements on other types
  } else {
    for (const c of def.checks ?? []) {
      const check = checkOf(c, kind);
      if (!check) return undefined;
      checks.push(check);
    }
  }
  switch (def.type) {
    case 'string': {
      if (def.check !== undefined) {
        // a string format schema (z.uuid(), z.iso.datetime(), …): its own check comes first
        if (def.check !== 'string_format') return undefined;
        const own = def.format === 'url' ? urlCheck(node) : patternCheck(def);
        if (!own) return undefined;
        checks.unshift(own);
      }
      const rest = all(checks);
      return (v) => typeof v === 'string' && rest(v);
    }
    case 'number': {
      if (def.check !== undefined) {
        // z.int(): a safe integer; other number formats (int32, float32, …) are not compiled
        if (def.check !== 'number_format' || def.format !== 'safeint') return undefined;
        checks.unshift((v) => Number.isSafeInteger(v));
      }
      const rest = all(checks);
      return (v) => typeof v === 'number' && Number.isFinite(v) && rest(v);
    }
    case 'boolean':
      return (v) => typeof v === 'boolean';
    case 'literal': {
      const values = def.values;
      if (!values) return undefined;
      return (v) => values.includes(v);
    }
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      if (values.length === 0 || !values.every((x) => typeof x === 'string')) return undefined;
      const set = new Set<unknown>(values);
      return (v) => set.has(v);
    }
    case 'optional': {
      const inner = def.innerType && compileNode(def.innerType);
      if (!inner) return undefined;
      return (v) => v === undefined || inner(v);
    }
    case 'object': {
      // strict objects only: a plain z.object() strips unknown keys (its output is not its input)
      if (def.catchall?._zod.def.type !== 'never' || !def.shape) return undefined;
      const fields: [string, FastCheck][] = [];
      for (const [key, schema] of Object.entries(def.shape)) {
        const check = compileNode(schema);
        if (!check) return undefined;
        fields.push([key, check]);
      }
      const keys = new Set(fields.map(([k]) => k));
      return (v) => {
        if (!isObject(v)) return false;
        for (const [key, check] of fields) if (!check(v[key])) return false;
        for (const key in v) if (!keys.has(key)) return false;
        return true;
      };
    }
    case 'array': {
      const element = def.element && compileNode(def.element);
      if (!element) return undefined;
      const rest = all(checks);
      return (v) => {
        if (!Array.isArray(v) || !rest(v)) return false;
        for (const x of v) if (!element(x)) return false;
        return true;
      };
    }
    case 'record': {
      // z.partialRecord(z.enum([...]), value): keys from the enum, each optional
      const keyDef = def.keyType?._zod.def;
      if (!def.partial || def.mode === 'loose' || keyDef?.type !== 'enum' || !def.valueType) return undefined;
      const keyValues = Object.values(keyDef.entries ?? {});
      if (!keyValues.every((x) => typeof x === 'string')) return undefined;
      const keys = new Set<unknown>(keyValues);
      const value = compileNode(def.valueType);
      if (!value) return undefined;
      return (v) => {
        if (!isObject(v) || Object.getPrototypeOf(v) !== Object.prototype) return false;
        for (const key in v) if (!keys.has(key) || !value(v[key])) return false;
        return true;
      };
    }
    default:
      return undefined;
  }
}

/**
 * Compiles a zod schema into a {@link FastCheck}, or returns undefined when the schema uses anything the compiler
 * does not know (then always parse with zod).
 * @param schema - a zod schema
 * @returns the check, or undefined
 * @internal
 */
export function compileFastCheck(schema: z.ZodType): FastCheck | undefined {
  return compileNode(schema as unknown as Node);
}
