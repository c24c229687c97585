/**
 * Imaging study routes (from the PACS). Study metadata carries PHI, so reads are audited like patient data.
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

extendZodWithOpenApi(z);
import { patientIdSchema, studyListSchema, studySchema } from '../api-schemas.js';
import { notFound } from '../http/errors.js';
import { defineRoute, type AnyRoute } from '../http/route.js';
import type { Auditor } from './auditor.js';
import type { ImagingArchive, VoxelGrid } from './ports.js';

/** A DICOM UID: digits and dots, at most 64 characters. @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#sect_9.1 */
export const dicomUidSchema = z
  .string()
  .max(64)
  .regex(/^[0-9]+(\.[0-9]+)*$/, 'a DICOM UID');

/** The OpenAPI schema of a raw binary answer. */
export const binaryBodySchema = z.instanceof(Buffer).openapi({ type: 'string', format: 'binary' });

/**
 * A voxel grid as a binary answer: the voxels' bytes (no copy), dims and spacing in `X-Volume-*` headers.
 * @param grid - dims, spacing and voxels
 */
export function gridResponse(grid: VoxelGrid<Float32Array | Uint8Array>): {
  body: Buffer;
  headers: Record<string, string>;
} {
  return {
    body: Buffer.from(grid.data.buffer, grid.data.byteOffset, grid.data.byteLength),
    headers: {
      'X-Volume-Dims': grid.dims.join(','),
      'X-Volume-Spacing': grid.spacing.join(','),
      'Cache-Control': 'private, max-age=300',
    },
  };
}

/**
 * The study routes.
 * @param deps - the archive and the auditor
 */
export function studyRoutes(deps: { archive: ImagingArchive; auditor: Auditor }): AnyRoute[] {
  const { archive, auditor } = deps;
  return [
    defineRoute({
      method: 'get',
      path: '/api/patients/{id}/studies',
      operationId: 'listPatientStudies',
      summary: 'A patient’s imaging studies (from Orthanc)',
      tags: ['studies'],
      access: { permission: 'study:read' },
      params: z.object({ id: patientIdSchema }),
      response: { status: 200, description: 'The studies', schema: studyListSchema },
      errors: [503],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `Patient/${params.id}/studies`, patientId: params.id },
          async () => ({
            body: { items: await archive.studiesOfPatient(params.id) },
          }),
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/studies/{studyUid}/series/{seriesUid}/volume',
      operationId: 'getSeriesVolume',
      summary: 'One series as raw little-endian float32 voxels for viewers (dims and spacing in X-Volume-* headers)',
      tags: ['studies'],
      access: { permission: 'study:read' },
      params: z.object({ studyUid: dicomUidSchema, seriesUid: dicomUidSchema }),
      response: {
        status: 200,
        description: 'Float32 voxels, i fastest',
        schema: binaryBodySchema,
        contentType: 'application/octet-stream',
      },
      errors: [404, 503],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          {
            principal,
            requestId,
            action: 'read',
            resource: `ImagingStudy/${params.studyUid}/series/${params.seriesUid}`,
          },
          async (audit) => {
            const study = await archive.study(params.studyUid);
            if (study?.patientId) audit.patientId = study.patientId;
            if (!study?.series.some((s) => s.uid === params.seriesUid)) throw notFound('Series');
            return gridResponse(await archive.seriesVolume(params.studyUid, params.seriesUid));
          },
        ),
    }),
    defineRoute({
      method: 'get',
      path: '/api/studies/{studyUid}',
      operationId: 'getStudy',
      summary: 'One imaging study with its series',
      tags: ['studies'],
      access: { permission: 'study:read' },
      params: z.object({ studyUid: dicomUidSchema }),
      response: { status: 200, description: 'The study', schema: studySchema },
      errors: [404, 503],
      handler: ({ params, principal, requestId }) =>
        auditor.around(
          { principal, requestId, action: 'read', resource: `ImagingStudy/${params.studyUid}` },
          async (audit) => {
            const study = await archive.study(params.studyUid);
            if (!study) throw notFound('Study');
            if (study.patientId) audit.patientId = study.patientId;
            return { body: study };
          },
        ),
    }),
  ];
}
