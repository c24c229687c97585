/**
 * Field rules with the messages of the Particle validator that OpenEMR uses
 * (`{field: {"Rule::CODE": "message"}}`), so the emulator's validation errors look like the real ones.
 * Input is the decoded JSON body, cast to an array of scalars as PHP's `(array) json_decode(...)` does.
 */

/** Particle's error object: field -> rule -> message. */
export type ParticleErrors = Record<string, Record<string, string>>;

/** One rule of a field. */
export type Rule =
  | { kind: 'lengthBetween'; min: number; max: number | null }
  | { kind: 'length'; length: number }
  | { kind: 'datetime'; format: readonly ('Y-m-d' | 'Y-m-d H:i:s')[] }
  | { kind: 'numeric' }
  | { kind: 'email' }
  | { kind: 'inList'; values: readonly string[] };

/** A field's rules. */
export interface FieldRule {
  field: string;
  label?: string;
  required: boolean;
  allowEmpty?: boolean;
  rules: Rule[];
}

function asText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

function validDate(text: string, format: 'Y-m-d' | 'Y-m-d H:i:s'): boolean {
  const m = (format === 'Y-m-d' ? DATE_RE : DATETIME_RE).exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999, which PHP's Y-m-d does not.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return false;
  if (format === 'Y-m-d H:i:s') return Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6]) < 60;
  return true;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `text` is a UUID string. */
export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

/**
 * Validates `body` against `fields`, Particle style. Returns `{}` when valid.
 * @param body - the decoded request body
 * @param fields - the rules
 */
export function validateFields(body: Record<string, unknown>, fields: readonly FieldRule[]): ParticleErrors {
  const errors: ParticleErrors = {};
  for (const f of fields) {
    const name = f.label ?? f.field;
    const present = Object.prototype.hasOwnProperty.call(body, f.field) && body[f.field] !== null;
    if (!present) {
      if (f.required)
        errors[f.field] = { 'Required::NON_EXISTENT_KEY': `${name} must be provided, but does not exist` };
      continue;
    }
    const text = asText(body[f.field]);
    if (text === undefined) {
      errors[f.field] = { 'Type::INVALID_VALUE': `${name} must be a scalar value` };
      continue;
    }
    if (text === '') {
      if (f.allowEmpty === true) continue;
      if (f.required) {
        errors[f.field] = { 'NotEmpty::EMPTY_VALUE': `${name} must not be empty` };
        continue;
      }
    }
    for (const rule of f.rules) {
      const problem = check(rule, text, name);
      if (problem) {
        errors[f.field] = problem;
        break;
      }
    }
  }
  return errors;
}

function check(rule: Rule, text: string, name: string): Record<string, string> | undefined {
  switch (rule.kind) {
    case 'lengthBetween':
      if (text.length < rule.min)
        return { 'LengthBetween::TOO_SHORT': `${name} must be ${rule.min} characters or longer` };
      if (rule.max !== null && text.length > rule.max)
        return { 'LengthBetween::TOO_LONG': `${name} must be ${rule.max} characters or shorter` };
      return undefined;
    case 'length':
      return text.length === rule.length
        ? undefined
        : { 'Length::TOO_SHORT': `${name} must be ${rule.length} characters long` };
    case 'datetime':
      return rule.format.some((f) => validDate(text, f))
        ? undefined
        : { 'DateTime::INVALID_VALUE': `${name} must be a valid date` };
    case 'numeric':
      return /^-?\d+(\.\d+)?$/.test(text.trim()) ? undefined : { 'Numeric::NOT_NUMERIC': `${name} must be numeric` };
    case 'email':
      return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(text)
        ? undefined
        : { 'Email::INVALID_VALUE': `${name} must be a valid email address` };
    case 'inList':
      return rule.values.includes(text)
        ? undefined
        : { 'InArray::NOT_IN_ARRAY': `${name} must be in the defined set of values` };
  }
}

/**
 * Reads a JSON request body the way OpenEMR does: `(array) json_decode(file_get_contents('php://input'))`.
 * Invalid JSON or a non-object becomes `{}`, which then fails as missing fields.
 * @param raw - the raw body text
 */
export function decodePhpBody(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined || raw === '') return {};
  try {
    const value: unknown = JSON.parse(raw);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    return {};
  } catch {
    return {};
  }
}
