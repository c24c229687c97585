import { describe, expect, it } from 'vitest';
import { StudySeriesError } from './dicom-errors.js';
import { generatePhantom } from './phantom.js';
import { buildStudyInput, selectStudySeries, type SeriesCandidate, type SelectionRules } from './series-study.js';

const s = (uid: string, description: string, tags: Record<string, string> = {}): SeriesCandidate => ({
  seriesInstanceUid: uid,
  description,
  modality: 'MR',
  tags,
});

describe('selectStudySeries', () => {
  it('picks the phantom writer’s series by description and tags', () => {
    const chosen = selectStudySeries([
      s('1', 'T1 3D MPRAGE', { InversionTime: '900' }),
      s('2', 'T1 3D MPRAGE post-contrast', { ContrastBolusAgent: 'Gadobutrol', InversionTime: '900' }),
      s('3', 'T2 TSE'),
      s('4', 'T2 FLAIR', { InversionTime: '2500' }),
    ]);
    expect([
      chosen.t1c.seriesInstanceUid,
      chosen.t1.seriesInstanceUid,
      chosen.t2.seriesInstanceUid,
      chosen.flair.seriesInstanceUid,
    ]).toEqual(['2', '1', '3', '4']);
  });

  it('understands vendor names and the contrast agent tag', () => {
    const chosen = selectStudySeries([
      s('a', 't2_tirm_tra_dark-fluid'),
      s('b', 't1_mprage_sag_p2_iso', { ContrastBolusAgent: 'Dotarem' }),
      s('c', 't1_se_tra'),
      s('d', 't2_tse_tra'),
      s('e', 'localizer'),
    ]);
    expect(chosen.flair.seriesInstanceUid).toBe('a');
    expect(chosen.t1c.seriesInstanceUid).toBe('b');
    expect(chosen.t1.seriesInstanceUid).toBe('c');
    expect(chosen.t2.seriesInstanceUid).toBe('d');
    expect(
      selectStudySeries([
        s('1', 'AX T1 POST GAD'),
        s('2', 'AX T1'),
        s('3', 'AX T2'),
        s('4', 'AX T2 IR', { InversionTime: '2200' }),
      ]).flair.seriesInstanceUid,
    ).toBe('4');
  });

  it('names every missing channel and lists the series present', () => {
    try {
      selectStudySeries([s('1', 'T1'), s('2', 'localizer')]);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(StudySeriesError);
      expect((error as StudySeriesError).missing).toEqual(['t1c', 't2', 'flair']);
      expect((error as Error).message).toBe(
        'study has no series for T1C, T2, FLAIR (series present: "T1", "localizer")',
      );
    }
  });

  it('takes site rules', () => {
    const rules: SelectionRules = {
      t1c: [{ description: /^SEQ-A$/ }],
      t1: [{ description: /^SEQ-B$/ }],
      t2: [{ tags: { EchoTime: /^9\d$/ } }],
      flair: [{ tags: { SequenceName: /tir/ } }],
    };
    const c = selectStudySeries(
      [s('1', 'SEQ-B'), s('2', 'SEQ-A'), s('3', 'x', { EchoTime: '90' }), s('4', 'y', { SequenceName: '*tir2d1' })],
      rules,
    );
    expect(c.t1c.seriesInstanceUid).toBe('2');
    expect(c.flair.seriesInstanceUid).toBe('4');
  });
});

describe('buildStudyInput', () => {
  const p = generatePhantom({ seed: 2, dims: [16, 16, 8] });
  it('stacks the channels in T1c, T1, T2, FLAIR order', () => {
    const input = buildStudyInput({
      t1c: { volume: p.modalities.t1c, seriesInstanceUid: 'a' },
      t1: { volume: p.modalities.t1, seriesInstanceUid: 'b' },
      t2: { volume: p.modalities.t2, seriesInstanceUid: 'c' },
      flair: { volume: p.modalities.flair, seriesInstanceUid: 'd' },
    });
    expect(input.channels[0]).toBe(p.modalities.t1c);
    expect(input.channels[3]).toBe(p.modalities.flair);
    expect(input.seriesInstanceUids.t2).toBe('c');
  });
  it('rejects channels on different grids', () => {
    const q = generatePhantom({ seed: 2, dims: [16, 16, 9] });
    expect(() =>
      buildStudyInput({
        t1c: { volume: p.modalities.t1c, seriesInstanceUid: 'a' },
        t1: { volume: p.modalities.t1, seriesInstanceUid: 'b' },
        t2: { volume: q.modalities.t2, seriesInstanceUid: 'c' },
        flair: { volume: p.modalities.flair, seriesInstanceUid: 'd' },
      }),
    ).toThrow(/T2 is on a different grid/);
  });
});
