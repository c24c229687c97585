/**
 * The viewer's binary reads, through @cdss/client (`studies.volume`, `analyses.segmentation`).
 */
import type { CdssClient } from '@cdss/client';
import type { LabelVolume, ScalarVolume } from './viewer/volume';

/**
 * Reads a series as a voxel volume.
 * @param client - the API client
 * @param studyUid - the study
 * @param seriesUid - the series
 */
export function loadVolume(client: CdssClient, studyUid: string, seriesUid: string): Promise<ScalarVolume> {
  return client.studies.volume(studyUid, seriesUid);
}

/**
 * Reads an analysis's segmentation as a label volume (BraTS labels on the T1c grid).
 * @param client - the API client
 * @param analysisId - the analysis
 */
export function loadSegmentation(client: CdssClient, analysisId: string): Promise<LabelVolume> {
  return client.analyses.segmentation(analysisId);
}
