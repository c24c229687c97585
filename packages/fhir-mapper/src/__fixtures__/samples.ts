/** Sample OpenEMR records and an AI result (synthetic; no real patient). */
export const PATIENT_UUID = '9a3b6c1e-2f4d-4a5b-8c7d-0e1f2a3b4c5d';

export const openEmrPatient = {
  id: '7',
  pid: '7',
  uuid: PATIENT_UUID,
  pubpid: 'MRN-0007',
  title: 'Ms.',
  fname: 'Ada',
  mname: 'B',
  lname: 'Testperson',
  DOB: '1961-04-12',
  sex: 'Female',
  street: '1 Test Street',
  city: 'Springfield',
  state: 'IL',
  postal_code: '62701',
  country_code: 'US',
  phone_home: '555-0100',
  phone_cell: '555-0101',
  phone_biz: '',
  email: 'ada@example.org',
  date: '2026-01-02 10:11:12',
};

export const openEmrEncounter = {
  eid: '12',
  euuid: '1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5e',
  puuid: PATIENT_UUID,
  pid: '7',
  date: '2026-01-05 09:30:00',
  reason: 'Headache and seizures',
  class_code: 'AMB',
  pc_catname: 'Office Visit',
  facility_name: 'Neuro Clinic',
};

export const openEmrProblemGbm = {
  id: '40',
  uuid: '2c3d4e5f-6071-4b8c-9d0e-1f2a3b4c5d6e',
  title: 'Glioblastoma, left temporal lobe',
  begdate: '2025-11-20',
  enddate: null,
  diagnosis: 'ICD10:C71.2',
  verification: 'confirmed',
  activity: '1',
  puuid: PATIENT_UUID,
};

export const openEmrProblemOther = {
  id: '41',
  uuid: '3d4e5f60-7182-4c9d-8e0f-2a3b4c5d6e7f',
  title: 'Essential hypertension',
  begdate: '2019-03-01 00:00:00',
  enddate: '',
  diagnosis: 'ICD10:I10',
  verification: 'unconfirmed',
  activity: '1',
  puuid: PATIENT_UUID,
};

export const openEmrAllergy = {
  id: '42',
  uuid: '4e5f6071-8293-4dae-9f10-3b4c5d6e7f80',
  title: 'Penicillin',
  begdate: '2010-06-01',
  diagnosis: 'RXNORM:7980',
  reaction: 'hives',
  severity_al: 'moderate',
  verification: 'confirmed',
  activity: '1',
  puuid: PATIENT_UUID,
};

export const openEmrMedication = {
  id: '43',
  title: 'Levetiracetam 500 mg',
  begdate: '2025-11-21 00:00:00',
  enddate: null,
  diagnosis: '',
  activity: '1',
  puuid: PATIENT_UUID,
};

export const openEmrPrescription = {
  uuid: '5f607182-93a4-4ebf-8021-4c5d6e7f8091',
  puuid: PATIENT_UUID,
  pid: '7',
  drug: 'Temozolomide 140 mg capsule',
  rxnorm_drugcode: '1114523',
  dosage: '1',
  quantity: '42',
  route: 'oral',
  unit: 'capsule',
  interval: 'daily',
  date_added: '2025-12-01 14:00:00',
  start_date: '2025-12-02',
  active: '1',
  note: 'With radiotherapy',
};

export const openEmrVitals = {
  id: '9',
  uuid: '60718293-a4b5-4fc0-8132-5d6e7f8091a2',
  date: '2026-01-05 09:35:00',
  pid: '7',
  puuid: PATIENT_UUID,
  eid: '12',
  bps: '128',
  bpd: '82',
  weight: '150.00',
  height: '65.00',
  temperature: '98.60',
  pulse: '72',
  respiration: '16',
  BMI: '24.96',
  oxygen_saturation: '98',
  head_circ: '0.00',
  waist_circ: '0.00',
  weight_unit: 'lb',
  height_unit: 'in',
  temperature_unit: 'degF',
  temp_method: 'Oral',
};

export const STUDY_UID = '1.2.826.0.1.3680043.8.498.10000000000000000000000000000000001';
export const SEG_SERIES_UID = '1.2.826.0.1.3680043.8.498.10000000000000000000000000000000002';
export const SEG_SOP_UID = '1.2.826.0.1.3680043.8.498.10000000000000000000000000000000003';

export function analysisResult(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    analysisId: 'job-0001',
    patientUuid: PATIENT_UUID,
    study: {
      studyInstanceUid: STUDY_UID,
      started: '2026-01-05T10:00:00+00:00',
      description: 'MR BRAIN W/WO',
      accessionNumber: 'ACC-1',
      dicomWebUrl: 'http://127.0.0.1:28042/dicom-web',
      series: [
        { seriesInstanceUid: '1.2.826.0.1.3680043.8.498.11', modality: 'MR', number: 1, description: 'AX T1 POST', numberOfInstances: 160 },
        { seriesInstanceUid: '1.2.826.0.1.3680043.8.498.12', modality: 'MR', number: 2, description: 'AX T1', numberOfInstances: 160 },
        { seriesInstanceUid: '1.2.826.0.1.3680043.8.498.13', modality: 'MR', number: 3, description: 'AX T2', numberOfInstances: 160 },
        { seriesInstanceUid: '1.2.826.0.1.3680043.8.498.14', modality: 'MR', number: 4, description: 'AX FLAIR', numberOfInstances: 160 },
      ],
    },
    segmentation: { seriesInstanceUid: SEG_SERIES_UID, sopInstanceUid: SEG_SOP_UID },
    volumesMl: { ET: 10.3, TC: 20.1, WT: 45.2 },
    largestDiameterMm: 52.4,
    otherDiametersMm: [38.1],
    model: { name: 'brats_mri_segmentation', version: '0.3.0', manufacturer: 'MONAI', intendedUse: 'This is an example, not to be used for diagnostic purposes' },
    timings: { startedAt: '2026-01-05T10:05:00+00:00', finishedAt: '2026-01-05T10:07:30+00:00', inferenceMs: 81234, totalMs: 150000 },
    status: 'preliminary',
    ...overrides,
  };
}
