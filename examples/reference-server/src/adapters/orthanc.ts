/**
 * The server's {@link ImagingArchive} port over `@cdss/orthanc-client` (DICOMweb QIDO-RS). Studies are linked to
 * patients by DICOM PatientID = the OpenEMR patient uuid.
 */
import { dicomNumbers, dicomString, retrieveSeg, retrieveSeriesVolume, type OrthancClient } from '@cdss/orthanc-client';
import { geometryOf, VoxelBufferPool } from '@cdss/dicom';
import type { ApiStudy } from '../api-schemas.js';
import type { ImagingArchive } from '../domain/ports.js';

type Dataset = Awaited<ReturnType<OrthancClient['dicomweb']['searchForStudies']>>[number];

function dicomDate(value: string | undefined): string | undefined {
  return value && /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : undefined;
}

/** DICOM TM (`HH`, `HHMM`, `HHMMSS`, `HHMMSS.FFFFFF`, PS3.5 Table 6.2-1) as `HH:MM:SS`. */
export function dicomTime(value: string | undefined): string | undefined {
  const m = value ? /^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$/.exec(value.trim()) : null;
  if (!m) return undefined;
  const [h, min = '00', sec = '00'] = [m[1] as string, m[2], m[3]];
  return Number(h) < 24 && Number(min) < 60 && Number(sec) < 61 ? `${h}:${min}:${sec}` : undefined;
}

/**
 * Where the server's volume reads stage their pixels: memory that is not kept. Without a pool of its own, a read would
 * use `@cdss/dicom`'s pool shared by the thread, which keeps up to 64 MiB of staging pages between series: right for
 * a worker reading study after study, but a server reads a volume only now and then (a report's key image, an
 * analysis's overlay) and would hold those pages for good, more of them the more reads ran at once (measured in the
 * soak: 8 MiB retained by a server after two minutes of reviews, growing after its warm point).
 */
const unpooled = new VoxelBufferPool({ maxRetainedBytes: 0 });

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
    const time = date ? dicomTime(dicomString(study, 'StudyTime')) : undefined;
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
      ...(time ? { time } : {}),
      ...(description ? { description } : {}),
      modalities: [...new Set(mapped.map((s) => s.modality).filter((m): m is string => Boolean(m)))],
      series: mapped,
    };
  }
  return {
    async studiesOfPatient(patientId) {
      const studies = await client.dicomweb.searchForStudies({
        match: { PatientID: patientId },
        includefield: ['StudyDescription', 'StudyDate', 'StudyTime'],
      });
      const result = await Promise.all(studies.map(withSeries));
      return result.sort((a, b) => `${b.date ?? ''}T${b.time ?? ''}`.localeCompare(`${a.date ?? ''}T${a.time ?? ''}`));
    },
    async study(studyUid) {
      const [study] = await client.dicomweb.searchForStudies({
        match: { StudyInstanceUID: studyUid },
        includefield: ['StudyDescription', 'StudyDate', 'StudyTime'],
      });
      return study ? withSeries(study) : undefined;
    },
    async seriesVolume(studyUid, seriesUid) {
      // Float32 straight from the assembler, so the volume is not copied a second time per request.
      const volume = await retrieveSeriesVolume(client.dicomweb, studyUid, seriesUid, {
        output: 'float32',
        pool: unpooled,
      });
      const data = volume.data instanceof Float32Array ? volume.data : Float32Array.from(volume.data);
      return { dims: volume.dims, spacing: volume.spacing, data };
    },
    async segmentation(studyUid, seg, sourceSeriesUid) {
      const source = await retrieveSeriesVolume(client.dicomweb, studyUid, sourceSeriesUid, { pool: unpooled });
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
