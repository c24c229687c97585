/**
 * The recordings folder as the suites see it: every `recorded-<release>` folder is a release the replay and
 * parity suites know (a new release's folder fails here until it has a profile, replay cases and a parity
 * world), and every file in a folder is a well-formed exchange the suites read (a file they would skip
 * fails here). That every exchange has its replay case is checked by the replay suite itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  EXCHANGE_FILE,
  RECORDED_VERSIONS,
  RECORDINGS_ROOT,
  recordedFiles,
  recordedFolders,
  recordings,
  recordingsRootPresent,
} from './recordings.js';

const present = recordingsRootPresent();

/** What every recorded exchange holds (the README of each folder). */
const exchangeSchema = z.strictObject({
  operation: z.string().min(1),
  note: z.string(),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']),
  path: z.string().startsWith('/'),
  query: z.record(z.string(), z.string()),
  requestHeaders: z.record(z.string(), z.string()),
  requestBody: z.unknown(),
  status: z.int().min(100).max(599),
  responseHeaders: z.record(z.string(), z.string()),
  responseBody: z.unknown(),
});

describe.skipIf(!present)('the recorded exchanges', () => {
  it('every recorded-<release> folder is a release the suites replay, and each of those is present', () => {
    expect(recordedFolders()).toEqual([...RECORDED_VERSIONS].sort());
  });

  for (const release of present ? recordedFolders() : []) {
    it(`recorded-${release}: every file is README.md or a numbered exchange the suites read`, () => {
      const files = recordedFiles(release);
      const stray = files.filter((f) => f !== 'README.md' && !EXCHANGE_FILE.test(f));
      expect(stray, 'files the replay and parity suites would not read').toEqual([]);
      const numbers = files.filter((f) => EXCHANGE_FILE.test(f)).map((f) => Number.parseInt(f, 10));
      expect(new Set(numbers).size, 'one exchange per number').toBe(numbers.length);
      const malformed = files
        .filter((f) => EXCHANGE_FILE.test(f))
        .flatMap((f) => {
          const parsed = exchangeSchema.safeParse(
            JSON.parse(readFileSync(join(RECORDINGS_ROOT, `recorded-${release}`, f), 'utf8')),
          );
          return parsed.success ? [] : [`${f}: ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`];
        });
      expect(malformed).toEqual([]);
    });

    it(`recorded-${release}: the suites read every numbered file`, () => {
      const read = recordings(release as (typeof RECORDED_VERSIONS)[number]).map((r) => r.file);
      expect(read).toEqual(
        recordedFiles(release)
          .filter((f) => EXCHANGE_FILE.test(f))
          .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10)),
      );
    });
  }
});

it.runIf(!present)('skips: the recordings (../shared/reference/openemr/recorded-*) are absent', () => {
  expect(process.env['CI'], 'CI must have ../shared').not.toBe('true');
});
