/**
 * Reading values out of DICOM JSON datasets (QIDO-RS answers, WADO-RS metadata) by keyword.
 * @packageDocumentation
 */
import type { DicomJsonDataset } from './schemas.js';

/** Tags of the attributes the client reads, by DICOM keyword (PS3.6). */
export const DICOM_TAGS = {
  PatientID: '00100020',
  PatientName: '00100010',
  StudyInstanceUID: '0020000D',
  StudyDate: '00080020',
  StudyTime: '00080030',
  StudyDescription: '00081030',
  AccessionNumber: '00080050',
  SeriesInstanceUID: '0020000E',
  SeriesDescription: '0008103E',
  SeriesNumber: '00200011',
  Modality: '00080060',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
  InstanceNumber: '00200013',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  ImagePositionPatient: '00200032',
  ImageOrientationPatient: '00200037',
  PixelSpacing: '00280030',
  Rows: '00280010',
  Columns: '00280011',
  ContrastBolusAgent: '00180010',
  InversionTime: '00180082',
  ScanningSequence: '00180020',
  EchoTime: '00180081',
  RepetitionTime: '00180080',
  SequenceName: '00180024',
  RetrieveURL: '00081190',
  ReferencedSOPSequence: '00081199',
  FailedSOPSequence: '00081198',
  ReferencedSOPInstanceUID: '00081155',
  FailureReason: '00081197',
} as const;

/** A keyword of {@link DICOM_TAGS}. */
export type DicomKeyword = keyof typeof DICOM_TAGS;

function attr(ds: DicomJsonDataset, key: DicomKeyword | string): DicomJsonDataset[string] | undefined {
  const tag = (DICOM_TAGS as Record<string, string>)[key] ?? key;
  return ds[tag] ?? ds[tag.toUpperCase()] ?? ds[tag.toLowerCase()];
}

/**
 * The first value of an attribute as a string (person names as their Alphabetic form).
 * @param ds - the dataset
 * @param key - a keyword of {@link DICOM_TAGS} or an 8-hex-digit tag
 * @returns the value, or undefined when absent or empty
 */
export function dicomString(ds: DicomJsonDataset, key: DicomKeyword | string): string | undefined {
  const v = attr(ds, key)?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if ('Alphabetic' in v && typeof v.Alphabetic === 'string') return v.Alphabetic;
  return undefined;
}

/**
 * All values of a numeric attribute.
 * @param ds - the dataset
 * @param key - a keyword or tag
 * @returns the numbers, or undefined when absent
 */
export function dicomNumbers(ds: DicomJsonDataset, key: DicomKeyword | string): number[] | undefined {
  const values = attr(ds, key)?.Value;
  if (!values) return undefined;
  return values.map((v) => (typeof v === 'number' ? v : Number(v)));
}

/**
 * The items of a sequence attribute.
 * @param ds - the dataset
 * @param key - a keyword or tag
 * @returns the item datasets (empty when absent)
 */
export function dicomItems(ds: DicomJsonDataset, key: DicomKeyword | string): DicomJsonDataset[] {
  return (attr(ds, key)?.Value ?? []).filter(
    (v): v is DicomJsonDataset => typeof v === 'object' && v !== null && !('Alphabetic' in v),
  );
}
