/**
 * The follower's policy and its bookkeeping on a scripted change feed: which studies are queued, the checkpoint
 * after a restart (nothing missed, nothing repeated), and failures retried from the checkpoint.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApiStudy } from '../api-schemas.js';
import { createLogger } from '../logger.js';
import { createFileCheckpoints, soleFollower } from './checkpoint.js';
import { autoAnalysisFollower, type AutoAnalysisDeps, type ChangeFeed } from './follower.js';

const dir = mkdtempSync(join(tmpdir(), 'cdss-follower-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FOUR = ['T1 pre', 'T1 post Gd', 'T2', 'FLAIR'].map((d, i) => ({
  uid: `1.2.${i}`,
  description: d,
  modality: 'MR',
}));
const study = (uid: string, patientId: string | undefined, series = FOUR): ApiStudy => ({
  uid,
  ...(patientId ? { patientId } : {}),
  modalities: ['MR'],
  series,
});

/** A feed whose changes are appended by the test; `changes()` follows it like Orthanc's, polling every 5 ms. */
function scriptedFeed(): ChangeFeed & { add(type: string, id: string): void; failNext: number } {
  const log: Array<{ Seq: number; ChangeType: string; ID: string }> = [];
  const feed = {
    failNext: 0,
    add(type: string, id: string) {
      log.push({ Seq: log.length + 1, ChangeType: type, ID: id });
    },
    async *changes({ since, signal }: { since: number; signal?: AbortSignal }) {
      let last = since;
      while (!signal?.aborted) {
        for (const change of log.filter((c) => c.Seq > last)) {
          if (feed.failNext > 0) {
            feed.failNext--;
            throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'HttpError' });
          }
          yield change;
          last = change.Seq;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async getLastChangeSeq() {
      return log.length;
    },
    async getStudy(id: string) {
      return { MainDicomTags: { StudyInstanceUID: `uid-${id}` } };
    },
  };
  return feed;
}

function harness(feed: ChangeFeed, studies: ApiStudy[], checkpointFile: string) {
  const requests: string[] = [];
  const jobs = new Map<string, string>();
  const deps: AutoAnalysisDeps = {
    feed,
    archive: { study: async (uid) => studies.find((s) => s.uid === uid) },
    checkpoints: createFileCheckpoints(checkpointFile),
    lease: soleFollower,
    reasonFor: async (patientId) =>
      patientId === 'p-tumour' ? 'brain-tumour-problem' : patientId === 'p-ordered' ? 'order' : undefined,
    async request({ studyUid }) {
      requests.push(studyUid);
      const existing = jobs.get(studyUid);
      if (existing) return { jobId: existing, created: false };
      jobs.set(studyUid, `job-${jobs.size + 1}`);
      return { jobId: jobs.get(studyUid)!, created: true };
    },
    logger: createLogger('silent'),
    retryDelayMs: 1,
    sleep: async () => undefined,
  };
  return { deps, requests, jobs };
}

describe('automatic analyses', () => {
  it('queues tumour-protocol studies of patients with a brain-tumour problem or an order, and skips the rest', async () => {
    const feed = scriptedFeed();
    const { deps } = harness(
      feed,
      [
        study('uid-a', 'p-tumour'),
        study('uid-b', 'p-ordered'),
        study('uid-c', 'p-other'),
        study('uid-d', 'p-tumour', FOUR.slice(0, 3)),
        study('uid-e', undefined),
        study('uid-f', 'p-tumour', [...FOUR, { uid: '1.2.9', description: 'AI segmentation 0.1.0', modality: 'SEG' }]),
      ],
      join(dir, 'policy.json'),
    );
    const follower = autoAnalysisFollower(deps);
    expect(await follower.handleStudy('a')).toEqual({
      outcome: 'queued',
      jobId: 'job-1',
      reason: 'brain-tumour-problem',
    });
    expect(await follower.handleStudy('a')).toEqual({
      outcome: 'already-queued',
      jobId: 'job-1',
      reason: 'brain-tumour-problem',
    });
    expect(await follower.handleStudy('b')).toMatchObject({ outcome: 'queued', reason: 'order' });
    expect(await follower.handleStudy('c')).toEqual({ outcome: 'skipped', why: 'not-requested' });
    expect(await follower.handleStudy('d')).toEqual({ outcome: 'skipped', why: 'not-tumour-protocol' });
    expect(await follower.handleStudy('e')).toEqual({ outcome: 'skipped', why: 'no-patient' });
    expect(await follower.handleStudy('f')).toEqual({ outcome: 'skipped', why: 'already-analysed' });
    expect(await follower.handleStudy('z')).toEqual({ outcome: 'skipped', why: 'not-found' });
  });

  it('starts from now, then across a restart misses nothing and repeats nothing; failures retry from the checkpoint', async () => {
    const feed = scriptedFeed();
    const studies = ['s1', 's2', 's3', 's4', 'old'].map((id) => study(`uid-${id}`, 'p-tumour'));
    const file = join(dir, 'restart.json');
    feed.add('StableStudy', 'old'); // before the first start: history is not analysed
    const first = harness(feed, studies, file);
    let follower = autoAnalysisFollower(first.deps);
    follower.start();
    await expect.poll(async () => first.deps.checkpoints.load('orthanc-changes:auto-analysis')).toBe(1);
    for (const id of ['s1', 's2']) {
      feed.add('NewInstance', `i-${id}`);
      feed.add('StableStudy', id);
    }
    await expect.poll(() => first.requests, { timeout: 5_000 }).toEqual(['uid-s1', 'uid-s2']);
    await follower.stop();

    // While the server is down, two more studies arrive; the feed fails twice on the way.
    for (const id of ['s3', 's4']) feed.add('StableStudy', id);
    feed.failNext = 2;
    const second = harness(feed, studies, file);
    second.jobs.set('uid-s1', 'job-x');
    follower = autoAnalysisFollower(second.deps);
    follower.start();
    await expect.poll(() => second.requests, { timeout: 5_000 }).toEqual(['uid-s3', 'uid-s4']);
    await follower.stop();
    expect(await second.deps.checkpoints.load('orthanc-changes:auto-analysis')).toBe(7);
  });
});
