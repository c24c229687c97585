/**
 * The server's {@link ImagingArchive} port over `@cdss/orthanc-client` (DICOMweb QIDO-RS). Studies are linked to
 * patients by DICOM PatientID = the OpenEMR patient uuid.
 */
import { dicomNumbers, dicomString, retrieveSeg, retrieveSeriesVolume, type OrthancClient } from '@cdss/orthanc-client';
import { geometryOf } from '@cdss/dicom';
import type { ApiStudy } from '../api-schemas.js';
import type { ImagingArchive } from '../domain/ports.js';

type Dataset = Awaited<ReturnType<OrthancClient['dicomweb']['searchForStudies']>>[number];

function dicomDate(value: string | undefined): string | undefined {
  return value && /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : undefined;
}

/**
 * The port over a client.
 * @param client - an Orthanc client (REST + DICOMweb)
 */
export function orthancArchive(client: OrthancClient): ImagingArchive {
  async function withSeries(study: Dataset): Promise<ApiStudy> {
    const uid = dicomString(study, 'StudyInstanceUID') ?? '';
    const series = await client.dicomweb.searchForSeries(uid, {
      includefield: ['SeriesDescription', 'SeriesNumber', 'Modality', 'NumberOfSeriesRelatedInstances'],
    });
    const patientId = dicomString(study, 'PatientID');
    const date = dicomDate(dicomString(study, 'StudyDate'));
    const description = dicomString(study, 'StudyDescription');
    const mapped = series
      .map((s) => {
        const number = dicomNumbers(s, 'SeriesNumber')?.[0];
        const instances = dicomNumbers(s, 'NumberOfSeriesRelatedInstances')?.[0];
        return {
          uid: dicomString(s, 'SeriesInstanceUID') ?? '',
          ...(dicomString(s, 'Modality') ? { modality: dicomString(s, 'Modality') } : {}),
          ...(dicomString(s, 'SeriesDescription') ? { description: dicomString(s, 'SeriesDescription') } : {}),
          ...(instances !== undefined ? { instances } : {}),
          ...(number !== undefined ? { number } : {}),
        };
      })
      .sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
    return {
      uid,
      ...(patientId ? { patientId } : {}),
      ...(date ? { date } : {}),
      ...(description ? { description } : {}),
      modalities: [...new Set(mapped.map((s) => s.modality).filter((m): m is string => Boolean(m)))],
      series: mapped,
    };
  }
  return {
    async studiesOfPatient(patientId) {
      const studies = await client.dicomweb.searchForStudies({
        match: { PatientID: patientId },
        includefield: ['StudyDescription', 'StudyDate'],
      });
      const result = await Promise.all(studies.map(withSeries));
      return result.sort((a, b) => (b.date ?? '').localeCompare(a.date ?? ''));
    },
    async study(studyUid) {
      const [study] = await client.dicomweb.searchForStudies({
        match: { StudyInstanceUID: studyUid },
        includefield: ['StudyDescription', 'StudyDate'],
      });
      return study ? withSeries(study) : undefined;
    },
    async seriesVolume(studyUid, seriesUid) {
      // Float32 straight from the assembler, so the volume is not copied a second time per request.
      const volume = await retrieveSeriesVolume(client.dicomweb, studyUid, seriesUid, { output: 'float32' });
      const data = volume.data instanceof Float32Array ? volume.data : Float32Array.from(volume.data);
      return { dims: volume.dims, spacing: volume.spacing, data };
    },
    async segmentation(studyUid, seg, sourceSeriesUid) {
      const source = await retrieveSeriesVolume(client.dicomweb, studyUid, sourceSeriesUid);
      const { labels } = await retrieveSeg(
        client.dicomweb,
        studyUid,
        seg.seriesUid,
        seg.instanceUid,
        geometryOf(source),
      );
      return { dims: labels.dims, spacing: labels.spacing, data: labels.data };
    },
    async ping() {
      await client.getSystem();
    },
  };
}
