/**
 * What a visitor sees after `npm start` and nothing else: the sandbox seeds its demo studies, analyses them by
 * itself, and the first tumour patient's timeline has three visits in scan-date order with a RANO response category.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assessment } from '@cdss/client';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { composeServer, DEMO_COURSES, type ComposedServer } from '../src/compose.js';
import { clientFor } from './flow.js';
import { freePort } from '@cdss/core/testing';

const dataDir = mkdtempSync(join(tmpdir(), 'cdss-demo-'));
let composed: ComposedServer;
let baseUrl: string;

beforeAll(async () => {
  const config = loadConfig({ CDSS_DATA_DIR: dataDir, CDSS_LOG_LEVEL: 'warn' });
  composed = await composeServer(config, createLogger('warn'), 'test');
  baseUrl = `http://127.0.0.1:${await composed.server.listen(await freePort(), '127.0.0.1')}`;
}, 120_000);

afterAll(async () => {
  await composed?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the sandbox demo', () => {
  it('shows a patient whose three visits are in date order with a response category, without any action', async () => {
    const { client } = await clientFor({ baseUrl }, 'demo-physician');
    const courses = new Map<number, Assessment>();
    await expect
      .poll(
        async () => {
          const queue = await client.analyses.list({ review: 'pending' });
          const patients = [...new Set(queue.items.map((a) => a.patientId))];
          for (const id of patients) {
            const assessment = await client.patients.assessment(id);
            courses.set(assessment.timeline.length, assessment);
          }
          return courses.get(DEMO_COURSES[0]!.length)?.status ?? 'waiting';
        },
        { timeout: 120_000, interval: 1_000 },
      )
      .not.toMatch(/waiting|not-evaluable/);
    const three = courses.get(3)!;
    expect(three.timeline.map((t) => t.date.slice(0, 10))).toEqual(DEMO_COURSES[0]!.map((v) => v.date));
    // the lesion grows: RANO progression, and the assessment says which criteria decided it
    expect(three.status).toBe('progression');
    expect(three.criteria).toBeDefined();
    expect(three.timeline[2]!.enhancingTumorMl).toBeGreaterThan(three.timeline[0]!.enhancingTumorMl);
  }, 180_000);
});
