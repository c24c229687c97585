/**
 * Input checks shared by the stores: fast on the hot path, precise (zod) when something is wrong.
 * @internal
 * @packageDocumentation
 */
import { cacheKeySchema, jsonValueSchema, setTimingSchema, type JsonValue, type SetTiming } from './types.js';
import { parseOrThrow } from './errors.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Checks a cache key; throws `ValidationError` when it is not a 1–250 character string without control characters.
 * @internal
 */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key === 'string' && key.length > 0 && key.length <= 250 && !CONTROL.test(key)) return;
  parseOrThrow(cacheKeySchema, key, 'Invalid cache key');
}

/**
 * Checks a value is JSON (no `undefined`, functions, `NaN`, cycles...) and returns its JSON text.
 * @internal
 */
export function toJsonText(value: unknown): string {
  const checked: JsonValue = parseOrThrow(jsonValueSchema, value, 'Cache value is not JSON');
  return JSON.stringify(checked);
}

/**
 * Checks write timing.
 * @internal
 */
export function checkTiming(timing: unknown): SetTiming {
  return parseOrThrow(setTimingSchema, timing, 'Invalid cache entry timing');
}

/**
 * Freezes a freshly parsed JSON value in depth so that entries can be handed out without copying.
 * @internal
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
