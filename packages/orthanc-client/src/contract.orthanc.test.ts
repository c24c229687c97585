/** The Orthanc contract suite against the real Orthanc (scripts/services; DICOMweb plugin, StableAge 2). */
import { requireService } from '@cdss/core/testing';
import { describe } from 'vitest';
import { OrthancClient } from './client.js';
import { orthancContract } from './testing.js';

const svc = await requireService('orthanc');

describe.skipIf(!svc.available)('real Orthanc', () => {
  orthancContract({
    name: 'Orthanc 1.10 + DICOMweb',
    client: () => new OrthancClient({ baseUrl: svc.url }),
    stableAgeSeconds: 2,
  });
});
