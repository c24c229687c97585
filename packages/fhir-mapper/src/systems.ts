/**
 * URIs of the code systems and identifier systems the mapper emits.
 * @packageDocumentation
 */

/** Code system URIs (FHIR R4 terminology page, https://hl7.org/fhir/R4/terminologies-systems.html). */
export const CODE_SYSTEMS = {
  loinc: 'http://loinc.org',
  snomed: 'http://snomed.info/sct',
  ucum: 'http://unitsofmeasure.org',
  icd10cm: 'http://hl7.org/fhir/sid/icd-10-cm',
  rxnorm: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  ncit: 'http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl',
  dicomDcm: 'http://dicom.nema.org/resources/ontology/DCM',
  v2_0074: 'http://terminology.hl7.org/CodeSystem/v2-0074',
  v2_0203: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  v3ActCode: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  observationCategory: 'http://terminology.hl7.org/CodeSystem/observation-category',
  conditionCategory: 'http://terminology.hl7.org/CodeSystem/condition-category',
  conditionClinical: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
  conditionVerification: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
  allergyClinical: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
  allergyVerification: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification',
  endpointConnectionType: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type',
  observationInterpretation: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
  provenanceParticipantType: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
  v3DataOperation: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
  resourceTypes: 'http://hl7.org/fhir/resource-types',
  deviceNameType: 'http://hl7.org/fhir/device-nametype',
  /** CDSS's own code system for the BraTS tumour sub-regions (no standard code covers TC and WT). */
  cdssBratsRegion: 'https://cdss.example.org/fhir/CodeSystem/brats-region',
} as const;

/** Profile canonical URLs (mCODE STU4, R4 vital signs, US Core). */
export const PROFILES = {
  primaryCancerCondition: 'http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-primary-cancer-condition',
  tumor: 'http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-tumor',
  tumorSize: 'http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-tumor-size',
  cancerDiseaseStatus: 'http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status',
  vitalSigns: 'http://hl7.org/fhir/StructureDefinition/vitalsigns',
  bp: 'http://hl7.org/fhir/StructureDefinition/bp',
  bodyWeight: 'http://hl7.org/fhir/StructureDefinition/bodyweight',
  bodyHeight: 'http://hl7.org/fhir/StructureDefinition/bodyheight',
  bodyTemp: 'http://hl7.org/fhir/StructureDefinition/bodytemp',
  heartRate: 'http://hl7.org/fhir/StructureDefinition/heartrate',
  respRate: 'http://hl7.org/fhir/StructureDefinition/resprate',
  bmi: 'http://hl7.org/fhir/StructureDefinition/bmi',
  oxygenSat: 'http://hl7.org/fhir/StructureDefinition/oxygensat',
  headCircum: 'http://hl7.org/fhir/StructureDefinition/headcircum',
} as const;

/** Extension URLs. */
export const EXTENSIONS = {
  /** US Core birth sex (valueCode M | F | UNK), as OpenEMR's FHIR API emits it. */
  usCoreBirthSex: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex',
  /**
   * The AI model (a Device) that produced a DiagnosticReport. R4 `DiagnosticReport.performer` only
   * admits Practitioner, PractitionerRole, Organization and CareTeam, so the model goes here (and in
   * each Observation's `device`).
   */
  aiModelDevice: 'https://cdss.example.org/fhir/StructureDefinition/ai-model-device',
  /** mCODE: the kind of evidence behind a CancerDiseaseStatus. */
  mcodeEvidenceType: 'http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-evidence-type',
} as const;

/** The identifier systems for one OpenEMR site: stable URIs keyed by the site name. */
export interface IdentifierSystems {
  /** `patient_data.uuid` (FHIR Patient.id in OpenEMR's own FHIR API). */
  patientUuid: string;
  /** `patient_data.pid`, the numeric internal id. */
  patientPid: string;
  /** `patient_data.pubpid`, the external MRN. */
  patientMrn: string;
  /** `form_encounter.uuid` (euuid). */
  encounterUuid: string;
  /** `lists.uuid` of medical problems and allergies. */
  listUuid: string;
  /** `lists.id` of medication-list entries (they have no uuid in the standard API). */
  medicationListId: string;
  /** `prescriptions.uuid`. */
  prescriptionUuid: string;
  /** `form_vitals.uuid` (or `id`), suffixed with the measurement. */
  vitalsId: string;
  /** CDSS AI model devices: `<name>@<version>`. */
  aiModel: string;
  /** CDSS tumour identifiers (mCODE Tumor.identifier), stable per patient and lesion. */
  tumor: string;
  /** CDSS analysis identifiers (AI job ids). */
  analysis: string;
  /** CDSS users (the authenticated principal's id), e.g. the radiologist who approved a report. */
  user: string;
}

/** DICOM UIDs as FHIR identifiers: `{system: 'urn:dicom:uid', value: 'urn:oid:<uid>'}`. */
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

/**
 * The identifier systems of one OpenEMR site. The URIs are stable: they are part of every conditional
 * write, so changing them would make the FHIR server create duplicates.
 * @param site - the OpenEMR site name (multisite installs: `default` unless configured)
 * @returns the systems, `urn:cdss:openemr:<site>:<kind>` for OpenEMR ids and `urn:cdss:<kind>` for CDSS ids
 */
export function identifierSystems(site = 'default'): IdentifierSystems {
  if (!/^[A-Za-z0-9._-]+$/.test(site)) throw new TypeError(`Invalid OpenEMR site name: ${JSON.stringify(site)}`);
  const emr = `urn:cdss:openemr:${site}`;
  return {
    patientUuid: `${emr}:patient-uuid`,
    patientPid: `${emr}:patient-pid`,
    patientMrn: `${emr}:patient-mrn`,
    encounterUuid: `${emr}:encounter-uuid`,
    listUuid: `${emr}:list-uuid`,
    medicationListId: `${emr}:medication-list-id`,
    prescriptionUuid: `${emr}:prescription-uuid`,
    vitalsId: `${emr}:vitals-id`,
    aiModel: 'urn:cdss:ai-model',
    tumor: 'urn:cdss:tumor',
    analysis: 'urn:cdss:analysis',
    user: 'urn:cdss:user',
  };
}
