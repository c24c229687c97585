/**
 * The viewer's binary reads. They go through @cdss/client (`studies.volume`, `analyses.segmentation`).
 */
import type { CdssClient } from '@cdss/client';
import type { LabelVolume, ScalarVolume } from './viewer/volume';

interface BinaryApi {
  studies: { volume?: (studyUid: string, seriesUid: string) => Promise<ScalarVolume> };
  analyses: { segmentation?: (id: string) => Promise<LabelVolume> };
}

/** Thrown when the connected server's client has no volume endpoint yet. */
export class NotSupportedError extends Error {}

/**
 * Reads a series as a voxel volume.
 * @param client - the API client
 * @param studyUid - the study
 * @param seriesUid - the series
 */
export async function loadVolume(client: CdssClient, studyUid: string, seriesUid: string): Promise<ScalarVolume> {
  const api = client as unknown as BinaryApi;
  if (!api.studies.volume) throw new NotSupportedError('this server does not serve volumes');
  return api.studies.volume(studyUid, seriesUid);
}

/**
 * Reads an analysis's segmentation as a label volume.
 * @param client - the API client
 * @param analysisId - the analysis
 */
export async function loadSegmentation(client: CdssClient, analysisId: string): Promise<LabelVolume> {
  const api = client as unknown as BinaryApi;
  if (!api.analyses.segmentation) throw new NotSupportedError('this server does not serve segmentations');
  return api.analyses.segmentation(analysisId);
}
