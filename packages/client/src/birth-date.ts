/**
 * Which birth dates the API accepts: real calendar dates from 1900-01-01 to today. An earlier date is a typing error
 * (a year 1870 for 1970), a later one a date that has not happened (a year 6085); both are refused with a 400.
 * "Today" is the date where it is latest on Earth (UTC+14), so a child born today is never refused because the
 * server's clock is in an earlier time zone.
 */

/** The earliest birth date the API accepts. */
export const EARLIEST_BIRTH_DATE = '1900-01-01';

/**
 * The latest birth date the API accepts at `now`.
 * @param now - ms since the epoch (default now)
 * @returns `YYYY-MM-DD`
 */
export function latestBirthDate(now: number = Date.now()): string {
  return new Date(now + 14 * 3_600_000).toISOString().slice(0, 10);
}

/**
 * A regular expression (ECMA-262 and JSON Schema alike) that matches exactly the birth dates accepted at `now`: real
 * calendar dates, leap days included, from {@link EARLIEST_BIRTH_DATE} to {@link latestBirthDate}. The OpenAPI
 * document carries it, so that what the document allows is what the server accepts that day.
 * @param now - ms since the epoch (default now)
 */
export function birthDatePattern(now: number = Date.now()): string {
  const [year, month, day] = latestBirthDate(now).split('-').map(Number) as [number, number, number];
  const first = Number(EARLIEST_BIRTH_DATE.slice(0, 4));
  const leapYears: string[] = [];
  for (let y = first; y < year; y++) if (isLeapYear(y)) leapYears.push(String(y));
  const alternatives = [
    // every whole year before this one (February 29 only in leap years)
    ...(year > first
      ? [
          `${group(numberRange(first, year - 1, 4))}-${monthsAndDays(1, 12, false)}`,
          ...(leapYears.length ? [`${group(leapYears.join('|'))}-02-29`] : []),
        ]
      : []),
    // this year's whole months, then this month up to today
    ...(month > 1 ? [`${year}-${monthsAndDays(1, month - 1, isLeapYear(year))}`] : []),
    `${year}-${pad(month, 2)}-${group(numberRange(1, day, 2))}`,
  ];
  return `^(?:${alternatives.join('|')})$`;
}

const isLeapYear = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const pad = (n: number, width: number): string => String(n).padStart(width, '0');
const group = (pattern: string): string => (pattern.includes('|') ? `(?:${pattern})` : pattern);

/** `MM-DD` for months `from`..`to` with their real lengths. */
function monthsAndDays(from: number, to: number, leap: boolean): string {
  const lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  const byLength = new Map<number, number[]>();
  for (let m = from; m <= to; m++) byLength.set(lengths[m - 1]!, [...(byLength.get(lengths[m - 1]!) ?? []), m]);
  const parts = [...byLength].map(
    ([length, months]) => `${group(months.map((m) => pad(m, 2)).join('|'))}-${group(numberRange(1, length, 2))}`,
  );
  return group(parts.join('|'));
}

/** A pattern (no anchors) for the numbers `low`..`high`, each written with `width` digits (zero-padded). */
function numberRange(low: number, high: number, width: number): string {
  return digitRange(pad(low, width), pad(high, width));
}

/** A pattern for the digit strings from `low` to `high` (same length, `low` ≤ `high`). */
function digitRange(low: string, high: string): string {
  if (low === high) return low;
  const [a, b] = [Number(low[0]), Number(high[0])];
  const rest = low.length - 1;
  if (a === b) return `${a}${group(digitRange(low.slice(1), high.slice(1)))}`;
  const parts: string[] = [];
  let from = a;
  let to = b;
  // A partial first digit (e.g. 19xx from 1905), whole middle digits, a partial last digit (e.g. 20xx to 2025).
  if (!/^0*$/.test(low.slice(1))) {
    parts.push(`${a}${group(digitRange(low.slice(1), '9'.repeat(rest)))}`);
    from++;
  }
  const lastPartial = !/^9*$/.test(high.slice(1));
  if (lastPartial) to--;
  // `[0-9]`, not `\d`: in a Python regex (schemathesis generates from this pattern) `\d` takes any Unicode digit.
  const anyRest = rest === 0 ? '' : rest === 1 ? '[0-9]' : `[0-9]{${rest}}`;
  if (from <= to) parts.push(`${from === to ? from : `[${from}-${to}]`}${anyRest}`);
  if (lastPartial) parts.push(`${b}${group(digitRange('0'.repeat(rest), high.slice(1)))}`);
  return parts.join('|');
}
