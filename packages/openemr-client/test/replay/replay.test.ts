/**
 * The replay suite: every recorded exchange with a real OpenEMR (8.0.0 and 7.0.1) served verbatim to the
 * client for its recorded request, holding the client to what it must do with the answer: parse it, map an
 * error to the right typed error, never report failure for a write that was stored, never write twice.
 * The results generate the compatibility table of the package README.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECORDED_VERSIONS, recordings, recordingsAvailable } from '../recordings.js';
import { expectGeneratedSection } from '../generated-section.js';
import { COMPATIBILITY_SECTION, compatibilityTable, type ReplayResult } from './compat.js';
import { ReplayServer } from './harness.js';
import { replayCases, type Outcome } from './cases.js';

const available = recordingsAvailable();

describe.skipIf(!available)('replay of the recorded OpenEMR exchanges', () => {
  const server = new ReplayServer();
  const cases = available ? replayCases() : [];
  const results: ReplayResult[] = [];
  beforeAll(() => server.listen());
  afterAll(() => server.close());

  it('covers every recorded exchange of every release', () => {
    const covered = new Set(cases.flatMap((c) => c.files));
    const missing = RECORDED_VERSIONS.flatMap((v) => recordings(v).map((r) => r.id)).filter((id) => !covered.has(id));
    expect(missing).toEqual([]);
  });

  for (const c of cases) {
    it(`${c.files.join(' + ')} ${c.operation} on ${c.profile}: ${c.title}`, async () => {
      if (c.run === undefined || c.expect === undefined) {
        // A step a browser takes (login page, patient picker, scope approval, EHR launcher): no client call;
        // the emulator parity suite holds the emulator to it.
        expect(c.operation).toBe('browser');
        return;
      }
      server.serve(c.steps);
      let outcome: Outcome;
      try {
        outcome = { ok: true, value: await c.run() };
      } catch (error) {
        outcome = { ok: false, error };
      }
      expect(server.finish(), 'the client sent exactly the recorded requests').toEqual([]);
      c.expect(outcome, server.sent);
      if (c.operation !== 'browser') results.push({ operation: c.operation, profile: c.profile, files: c.files });
    });
  }

  it('the README compatibility table is generated from these results', async () => {
    expect(results.length).toBeGreaterThan(0);
    await expectGeneratedSection(COMPATIBILITY_SECTION, compatibilityTable(results));
  });
});

it.runIf(!available)('skips: the recordings (../shared/reference/openemr/recorded-*) are absent', () => {
  expect(process.env['CI'], 'CI must have ../shared').not.toBe('true');
});
