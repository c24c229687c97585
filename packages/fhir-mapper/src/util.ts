/** Internal helpers shared by the mappers. */
import { ValidationError } from '@cdss/core';
import type { z } from 'zod';

/**
 * Parses input with a zod schema.
 * @throws `ValidationError` (`@cdss/core`) naming every bad field; the input's values never appear in it
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw ValidationError.fromZod(result.error, `Invalid ${what}`);
  return result.data;
}

/** Drops keys whose value is undefined, empty arrays and empty strings (FHIR forbids empty values). */
export function compact<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out as T;
}

/**
 * Converts an OpenEMR date or datetime ("YYYY-MM-DD" or "YYYY-MM-DD HH:MM[:SS]", server local time,
 * no zone) to a FHIR date or dateTime. FHIR requires a zone on a time, so `offset` supplies it.
 */
export function toFhirDateTime(value: string, offset: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2})(?::(\d{2}))?)?/.exec(value);
  if (!m) throw new TypeError('not an OpenEMR date');
  const [, date, hm, sec] = m;
  if (!hm) return date as string;
  return `${date}T${hm}:${sec ?? '00'}${offset}`;
}

/** Takes the date part of an OpenEMR date or datetime. */
export function toFhirDate(value: string): string {
  return value.slice(0, 10);
}

/** Rounds to `digits` decimals (unit conversions must not invent precision). */
export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
