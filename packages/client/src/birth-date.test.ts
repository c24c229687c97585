import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { birthDatePattern, EARLIEST_BIRTH_DATE, latestBirthDate } from './birth-date.js';
import { birthDateInputSchema, patientInputSchema, patientSchema } from './schemas.js';

const at = (iso: string): number => Date.parse(iso);
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** Every `YYYY-MM-DD` with months 00–13 and days 00–32 in the given years: real dates and near misses. */
function* calendarLike(fromYear: number, toYear: number): Generator<string> {
  for (let y = fromYear; y <= toYear; y++)
    for (let m = 0; m <= 13; m++) for (let d = 0; d <= 32; d++) yield `${pad(y, 4)}-${pad(m)}-${pad(d)}`;
}

describe('birth dates', () => {
  it('takes "today" where it is latest on Earth (UTC+14)', () => {
    expect(latestBirthDate(at('2026-12-06T09:59:59Z'))).toBe('2026-12-06');
    expect(latestBirthDate(at('2026-12-06T10:00:00Z'))).toBe('2026-12-07');
  });

  it.each([
    ['mid-year', '2026-12-06T12:00:00Z'],
    ['on January 1', '2027-01-01T00:00:00Z'],
    ['on a leap day', '2028-02-29T00:00:00Z'],
    ['on the last day of a month', '2025-04-30T05:00:00Z'],
  ])('the pattern matches exactly the dates the schema accepts (%s)', (_when, now) => {
    const pattern = new RegExp(birthDatePattern(at(now)));
    const latest = latestBirthDate(at(now));
    const isDate = z.iso.date();
    const mismatches: string[] = [];
    for (const s of calendarLike(1897, Number(latest.slice(0, 4)) + 1)) {
      const accepted = isDate.safeParse(s).success && s >= EARLIEST_BIRTH_DATE && s <= latest;
      if (pattern.test(s) !== accepted) mismatches.push(s);
    }
    expect(mismatches).toEqual([]);
    // the checker can fail: a leap day in a leap year and not in 1900, and the bounds themselves
    expect(['1904-02-29', '2000-02-29', EARLIEST_BIRTH_DATE, latest].every((s) => pattern.test(s))).toBe(true);
    expect(['1900-02-29', '1899-12-31', '2001-02-29', '6085-01-01'].some((s) => pattern.test(s))).toBe(false);
  });

  it('refuses a future or a pre-1900 birth date with a message that says which, and any date in a response', () => {
    const input = { givenName: 'Ada', familyName: 'Byron', sex: 'female' as const };
    const future = patientInputSchema.safeParse({ ...input, birthDate: '6085-03-01' });
    expect(future.success).toBe(false);
    expect(future.error?.issues).toMatchObject([{ path: ['birthDate'], message: 'must not be in the future' }]);
    const old = patientInputSchema.safeParse({ ...input, birthDate: '1815-12-10' });
    expect(old.error?.issues).toMatchObject([{ path: ['birthDate'], message: 'must not be before 1900-01-01' }]);
    expect(patientInputSchema.safeParse({ ...input, birthDate: '1915-12-10' }).success).toBe(true);
    expect(birthDateInputSchema.safeParse(latestBirthDate()).success).toBe(true);
    // a record made in OpenEMR directly is still shown
    expect(patientSchema.safeParse({ ...input, birthDate: '1815-12-10', id: 'x' }).success).toBe(true);
  });

  it("gives the JSON Schema today's pattern", () => {
    const schema = z.toJSONSchema(birthDateInputSchema) as { pattern?: string; format?: string };
    expect(schema.pattern).toBe(birthDatePattern());
    expect(schema.format).toBe('date');
  });
});
