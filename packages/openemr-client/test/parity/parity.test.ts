/**
 * Emulator parity: every recorded request, replayed against the sandbox's OpenEMR emulator in recording
 * order, gets the recorded status and a body of the same shape, with only the differences listed in
 * `compare.ts` (TOLERATED_DIFFERENCES, also in the sandbox's OpenEMR README). The emulator is held to a real
 * OpenEMR 8.0.0 and 7.0.1 through this; the contract suite holds the client to the emulator.
 */
import { describe, expect, it } from 'vitest';
import { recordings, recordingsAvailable, type RecordedVersion } from '../recordings.js';
import { ParityRun, type ParityHooks } from './run.js';
import { world70, world80 } from './worlds.js';

const available = recordingsAvailable();
const releases: [RecordedVersion, '8.0' | '7.0', (run: ParityRun) => Promise<Record<number, ParityHooks>>][] = [
  ['8.0.0', '8.0', world80],
  ['7.0.1', '7.0', world70],
];

for (const [release, version, setup] of releases) {
  describe.skipIf(!available)(`the emulator (${version}) answers every request recorded on OpenEMR ${release}`, () => {
    const run = new ParityRun(version);
    let hooks: Record<number, ParityHooks> | undefined;
    for (const ex of available ? recordings(release) : []) {
      it(`${ex.file}: ${ex.method} ${ex.path} → ${ex.status}`, async () => {
        hooks ??= await setup(run);
        const problems = await run.replay(ex, hooks[Number.parseInt(ex.file, 10)]);
        expect(problems, ex.note).toEqual([]);
      });
    }
  });
}

it.runIf(!available)('skips: the recordings (../shared/reference/openemr/recorded-*) are absent', () => {
  expect(process.env['CI'], 'CI must have ../shared').not.toBe('true');
});
