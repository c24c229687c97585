/**
 * Test helpers for `@cdss/ai-jobs` users: sample protocol inputs (synthetic identifiers only, no PHI) and a
 * stand-in job handler.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { createMessage } from './codec.js';
import type { AnalysisRequested, AnalysisResult } from './protocol.js';
import type { JobHandler } from './worker.js';

const STUDY = '1.2.826.0.1.3680043.8.498.1';

/**
 * Input for `new RequestAnalysis(...)` with synthetic identifiers.
 * @param overrides - fields to replace
 * @returns the input
 */
export function sampleRequestInput(
  overrides: Partial<{
    jobId: string;
    idempotencyKey: string;
    patientRef: string;
    studyInstanceUid: string;
    priority: 'routine' | 'urgent' | 'asap' | 'stat';
    deadline: string;
    callbackUrl: string;
  }> = {},
): {
  jobId?: string;
  idempotencyKey: string;
  patientRef: string;
  studyInstanceUid: string;
  series: { t1c: string; t1: string; t2: string; flair: string };
  model: { id: string; version: string };
  priority: 'routine' | 'urgent' | 'asap' | 'stat';
  requestedBy: string;
  deadline?: string;
  callbackUrl?: string;
} {
  return {
    idempotencyKey: `test-${randomUUID()}`,
    patientRef: 'Patient/test-1',
    studyInstanceUid: STUDY,
    series: { t1c: `${STUDY}.1`, t1: `${STUDY}.2`, t2: `${STUDY}.3`, flair: `${STUDY}.4` },
    model: { id: 'brats_mri_segmentation', version: '0.5.3' },
    priority: 'routine',
    requestedBy: 'test-user',
    ...overrides,
  };
}

/**
 * A complete `analysis.requested` message with synthetic identifiers.
 * @param overrides - fields to replace
 * @returns the message
 */
export function sampleRequest(overrides: Parameters<typeof sampleRequestInput>[0] = {}): AnalysisRequested {
  const { jobId, ...input } = sampleRequestInput(overrides);
  return createMessage({
    type: 'analysis.requested',
    jobId: jobId ?? randomUUID(),
    createdAt: new Date().toISOString(),
    ...input,
  });
}

/** A plausible segmentation result. */
export function sampleResult(): AnalysisResult {
  return {
    regions: [
      { region: 'enhancing-tumour', volumeMl: 12.5, voxelCount: 12500 },
      { region: 'tumour-core', volumeMl: 20.25, voxelCount: 20250 },
      { region: 'whole-tumour', volumeMl: 48, voxelCount: 48000 },
    ],
    segmentation: { studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.9`, sopInstanceUid: `${STUDY}.9.1` },
    model: { id: 'brats_mri_segmentation', version: '0.5.3' },
    timingsMs: { inference: 1 },
  };
}

/** A handler that does no work and returns {@link sampleResult}: for benchmarks and protocol tests. */
export const noopHandler: JobHandler = async () => sampleResult();
