/**
 * The FHIR R4 API (`/apis/{site}/fhir/...`) as OpenEMR's code behaves (notes §4): resources built from
 * the same tables as the standard API, search results as `collection` Bundles with only a `self` link
 * and `total` = entries in this response, `_offset` only for Patient, unknown search parameters giving
 * an empty 200 Bundle, unknown ids a 404 with body `[]`, and writes only on Patient, Practitioner and
 * Organization, where `POST /fhir/Patient` answers 201 `{pid, uuid}`.
 */
import {
  bodyText,
  columnText,
  isKernel8,
  json,
  kernelError,
  makeUuid,
  mysqlDateTime,
  type EmulatorResponse,
  type EngineContext,
  type RouteInput,
} from './context.js';
import { CAPABILITY_RESOURCES, RESOURCES_SINCE_8, SECURITY_CAPABILITIES } from './capability.js';
import { blankPatientRow } from './rows.js';
import { supportedScopes } from './scopes.js';
import { isUuid, validateFields } from './validate.js';
import type {
  DocumentRow,
  EncounterRow,
  FacilityRow,
  ListRow,
  PatientRow,
  PrescriptionRow,
  UserRow,
  VitalRow,
} from './types.js';
import type { StandardApi } from './standard-api.js';
import { RESPONSE_TYPES } from './oauth.js';

type Resource = Record<string, unknown> & { resourceType: string; id: string };

/** The date part of a MySQL date-time, as a midnight date-time (OpenEMR stores list dates that way). */
function day(mysql: string | null): string | null {
  return mysql === null ? null : `${mysql.slice(0, 10)} 00:00:00`;
}

function iso(mysql: string | null | undefined): string | undefined {
  if (mysql === null || mysql === undefined || mysql === '') return undefined;
  return mysql.length === 10 ? mysql : `${mysql.replace(' ', 'T')}+00:00`;
}

function operationOutcome(status: number, diagnostics: string, code = 'invalid'): EmulatorResponse {
  return json(status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] });
}

const GENDER_TO_FHIR = (sex: string): string => {
  const s = sex.toLowerCase();
  if (s === 'male' || s === 'female') return s;
  if (s === 'unk') return 'unknown';
  return 'other'; // notes §4.4: anything else, including an empty sex, becomes `other`
};

/** Search parameters each resource understands; anything else empties the result (notes §4.3). */
const SEARCH_PARAMS: Record<string, string[]> = {
  Patient: [
    '_id',
    '_lastUpdated',
    'identifier',
    'name',
    'family',
    'given',
    'birthdate',
    'gender',
    'address',
    'address-city',
    'address-postalcode',
    'address-state',
    'email',
    'phone',
    'telecom',
    'generalPractitioner',
  ],
  Encounter: ['_id', '_lastUpdated', 'patient', 'date'],
  Condition: ['_id', '_lastUpdated', 'patient', 'category'],
  AllergyIntolerance: ['_id', '_lastUpdated', 'patient'],
  MedicationRequest: ['_id', '_lastUpdated', 'patient', 'intent', 'status'],
  Observation: ['_id', '_lastUpdated', 'patient', 'code', 'category', 'date'],
  Practitioner: [
    '_id',
    '_lastUpdated',
    'name',
    'family',
    'given',
    'identifier',
    'active',
    'email',
    'phone',
    'telecom',
    'address',
  ],
  Organization: [
    '_id',
    '_lastUpdated',
    'name',
    'email',
    'phone',
    'telecom',
    'address',
    'address-city',
    'address-postalcode',
    'address-state',
  ],
  DocumentReference: ['_id', '_lastUpdated', 'patient', 'category', 'date', 'type'],
};
const CONTROL_PARAMS = ['_count', '_offset', '_sort', '_revinclude', '_format'];

/** The FHIR handlers. */
export class FhirApi {
  constructor(
    private readonly ctx: EngineContext,
    private readonly standard: StandardApi,
  ) {}

  private get t() {
    return this.ctx.store.tables;
  }

  private fhirBase(input: RouteInput): string {
    return `${input.req.origin}/apis/${this.ctx.site}/fhir`;
  }

  // ------------------------------------------------------------------ mapping

  /** US Core profiles 8.x lists in `meta.profile` (recorded-8.0.0 file 55; 7.0.1 lists none, file 37). */
  private meta(lastUpdated: string | undefined, profiles: string[]): Record<string, unknown> {
    const meta: Record<string, unknown> = { versionId: '1', lastUpdated };
    if (isKernel8(this.ctx.version) && profiles.length > 0) meta['profile'] = profiles;
    return meta;
  }

  /** A Patient as recorded (8.0.0 file 55, 93; 7.0.1 file 37): US Core extensions, official name, home address. */
  private patient(p: PatientRow): Resource {
    const k8 = isKernel8(this.ctx.version);
    const core = 'http://hl7.org/fhir/us/core/StructureDefinition';
    const unknown = {
      system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason',
      code: 'unknown',
      display: 'Unknown',
    };
    const telecom: Record<string, string>[] = [];
    if (p.phone_home) telecom.push({ system: 'phone', value: p.phone_home, use: 'home' });
    if (p.phone_cell) telecom.push({ system: 'phone', value: p.phone_cell, use: 'mobile' });
    if (p.email) telecom.push({ system: 'email', value: p.email, use: 'home' });
    const sex = (p.sex || 'UNK').slice(0, 1).toUpperCase();
    const extension: Record<string, unknown>[] = [
      { valueCode: sex === 'U' ? 'UNK' : sex, url: `${core}/us-core-birthsex` },
      {
        extension: [
          {
            valueCoding: {
              system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor',
              code: 'UNK',
              display: 'Unknown',
            },
            url: 'ombCategory',
          },
          { valueString: 'Unknown', url: 'text' },
        ],
        url: `${core}/us-core-race`,
      },
    ];
    if (k8) {
      extension.push({
        valueCoding: { system: 'DataAbsentReason', code: 'unknown', display: 'Unknown' },
        url: `${core}/us-core-sex`,
      });
      extension.push({ valueCoding: unknown, url: `${core}/us-core-interpreter-needed` });
    }
    const name: Record<string, unknown> = {
      use: 'official',
      family: p.lname,
      given: [p.fname, ...(p.mname ? [p.mname] : [])],
    };
    if (p.title) name['prefix'] = [p.title];
    const address: Record<string, unknown> = { use: 'home', type: 'both' };
    if (p.street) address['line'] = [p.street];
    if (p.city) address['city'] = p.city;
    if (p.state) address['state'] = p.state;
    if (p.postal_code) address['postalCode'] = p.postal_code;
    if (p.country_code) address['country'] = p.country_code;
    address['period'] = { start: `${(iso(p.regdate) ?? '').replace('+00:00', '')}.000+00:00` };
    const hasAddress = [p.street, p.city, p.state, p.postal_code].some((v) => v !== '');
    const r: Resource = {
      id: p.uuid,
      meta: this.meta(iso(p.date), [
        `${core}/us-core-patient`,
        `${core}/us-core-patient|3.1.1`,
        `${core}/us-core-patient|8.0.0`,
      ]),
      resourceType: 'Patient',
      text: {
        status: 'generated',
        div: `<div xmlns="http://www.w3.org/1999/xhtml"> <p>${[p.fname, p.lname].filter(Boolean).join(' ')}</p></div>`,
      },
      extension,
      identifier: [
        {
          use: 'official',
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PT' }] },
          system: 'http://terminology.hl7.org/CodeSystem/v2-0203',
          value: p.pubpid,
        },
      ],
      active: true,
      name: [name],
    };
    if (telecom.length > 0) r['telecom'] = telecom;
    r['gender'] = GENDER_TO_FHIR(p.sex || 'Unknown');
    if (p.DOB) r['birthDate'] = p.DOB;
    if (k8) r['deceasedBoolean'] = false;
    if (hasAddress) r['address'] = [address];
    r['communication'] = [{ language: { coding: [unknown] } }];
    const provider = this.t.users.find((u) => u.id === p.providerID);
    if (provider) r['generalPractitioner'] = [{ reference: `Practitioner/${provider.uuid}`, type: 'Practitioner' }];
    return r;
  }

  private patientRef(pid: string, typed = true): Record<string, string> | undefined {
    const patient = this.t.patients.find((p) => p.pid === pid);
    if (!patient) return undefined;
    return typed ? { reference: `Patient/${patient.uuid}`, type: 'Patient' } : { reference: `Patient/${patient.uuid}` };
  }

  private encounter(e: EncounterRow): Resource {
    const provider = this.t.users.find((u) => u.id === e.provider_id);
    const facility = this.t.facilities.find((f) => f.id === e.facility_id);
    return {
      resourceType: 'Encounter',
      id: e.uuid,
      meta: { versionId: '1', lastUpdated: iso(e.last_update) },
      identifier: [{ system: 'urn:ietf:rfc:3986', value: e.uuid }],
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: e.class_code },
      type: [
        {
          coding: [
            { system: 'http://snomed.info/sct', code: '185349003', display: 'Encounter for check up (procedure)' },
          ],
        },
      ],
      subject: this.patientRef(e.pid),
      participant: provider
        ? [{ individual: { reference: `Practitioner/${provider.uuid}`, type: 'Practitioner' } }]
        : undefined,
      period: { start: iso(e.date) },
      reasonCode: e.reason ? [{ text: e.reason }] : undefined,
      serviceProvider: facility ? { reference: `Organization/${facility.uuid}`, type: 'Organization' } : undefined,
    };
  }

  private coding(diagnosis: string): Record<string, unknown>[] {
    return diagnosis
      .split(';')
      .filter(Boolean)
      .map((d) => {
        const [system, code] = d.split(':');
        const url =
          system === 'ICD10'
            ? isKernel8(this.ctx.version)
              ? 'http://hl7.org/fhir/sid/icd-10-cm'
              : '2.16.840.1.113883.6.90'
            : system === 'SNOMED-CT'
              ? 'http://snomed.info/sct'
              : system === 'RXCUI'
                ? 'http://www.nlm.nih.gov/research/umls/rxnorm'
                : `urn:openemr:${system ?? ''}`;
        return { system: url, code: code ?? '', display: '' };
      });
  }

  /**
   * A problem as a Condition (recorded-8.0.0 file 100; 7.0.1 file 40): 8.x names it by text and carries the
   * onset, abatement and recorded dates; 7.0.1 codes it with the ICD-10 OID.
   */
  private condition(l: ListRow): Resource {
    const k8 = isKernel8(this.ctx.version);
    const core = 'http://hl7.org/fhir/us/core/StructureDefinition';
    const resolved = l.enddate !== null && l.enddate !== '';
    const category: Record<string, unknown> = {
      coding: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/condition-category',
          code: 'problem-list-item',
          display: 'Problem List Item',
        },
      ],
    };
    if (k8) category['text'] = 'Problem List Item';
    const r: Resource = {
      id: l.uuid ?? '',
      meta: this.meta(iso(l.date), [
        `${core}/us-core-condition`,
        `${core}/us-core-condition|3.1.1`,
        ...['', '|3.1.1', '|6.1.0', '|7.0.0', '|8.0.0'].map(
          (v) => `${core}/us-core-condition-problems-health-concerns${v}`,
        ),
      ]),
      resourceType: 'Condition',
      clinicalStatus: {
        coding: [
          k8 && resolved
            ? {
                system: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
                code: 'inactive',
                display: 'Inactive',
              }
            : { system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active', display: 'Active' },
        ],
      },
      verificationStatus: {
        coding: [
          l.verification === 'confirmed'
            ? {
                system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
                code: 'confirmed',
                display: 'Confirmed',
              }
            : {
                system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
                code: 'unconfirmed',
                display: 'Unconfirmed',
              },
        ],
      },
      category: [category],
      code: k8 ? { text: l.title } : { coding: this.coding(l.diagnosis) },
      subject: this.patientRef(l.pid, false),
    };
    if (k8) {
      if (l.begdate) r['onsetDateTime'] = iso(day(l.begdate));
      if (resolved) r['abatementDateTime'] = iso(day(l.enddate));
      if (l.begdate) r['recordedDate'] = iso(day(l.begdate));
    }
    return r;
  }

  private allergy(l: ListRow): Resource {
    return {
      resourceType: 'AllergyIntolerance',
      id: l.uuid ?? '',
      meta: { versionId: '1', lastUpdated: iso(l.date) },
      clinicalStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
            code: l.enddate ? 'inactive' : 'active',
          },
        ],
      },
      verificationStatus: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' },
        ],
      },
      category: ['medication'],
      criticality: l.severity_al === 'severe' ? 'high' : 'low',
      code: { coding: this.coding(l.diagnosis), text: l.title },
      patient: this.patientRef(l.pid),
      onsetDateTime: iso(l.begdate),
      reaction: l.reaction ? [{ manifestation: [{ text: l.reaction }] }] : undefined,
    };
  }

  private medicationRequestFromList(l: ListRow): Resource {
    return {
      resourceType: 'MedicationRequest',
      id: l.uuid ?? '',
      meta: { versionId: '1', lastUpdated: iso(l.date) },
      status: l.enddate ? 'completed' : 'active',
      intent: 'plan',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community' }] },
      ],
      reportedBoolean: true,
      medicationCodeableConcept: { coding: this.coding(l.diagnosis), text: l.title },
      subject: this.patientRef(l.pid),
      authoredOn: iso(l.begdate),
    };
  }

  private medicationRequestFromRx(r: PrescriptionRow): Resource {
    const provider = this.t.users.find((u) => u.id === r.provider_id);
    return {
      resourceType: 'MedicationRequest',
      id: r.uuid,
      meta: { versionId: '1', lastUpdated: iso(r.date_added) },
      status: r.active === '1' ? 'active' : 'stopped',
      intent: 'order',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community' }] },
      ],
      reportedBoolean: false,
      medicationCodeableConcept: {
        coding: r.rxnorm_drugcode
          ? [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: r.rxnorm_drugcode, display: r.drug }]
          : [],
        text: r.drug,
      },
      subject: this.patientRef(r.pid),
      authoredOn: iso(r.start_date),
      requester: provider ? { reference: `Practitioner/${provider.uuid}`, type: 'Practitioner' } : undefined,
      dosageInstruction: r.dosage ? [{ text: `${r.dosage} ${r.unit}`.trim() }] : undefined,
    };
  }

  /**
   * A vitals form as OpenEMR's FHIR Observations (recorded-8.0.0 file 78): the vital-signs panel with its
   * members, one Observation per member whether measured or not (unmeasured ones carry a dataAbsentReason).
   */
  private observations(v: VitalRow): Resource[] {
    const subject = this.patientRef(v.pid);
    const e = this.t.encounters.find((x) => x.pid === v.pid && x.encounter === v.eid);
    const encounter = e ? { reference: `Encounter/${e.uuid}`, type: 'Encounter' } : undefined;
    const absent = {
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'unknown', display: 'Unknown' },
      ],
    };
    const quantity = (value: string | null, unit: string, code: string): Record<string, unknown> =>
      value === null || value === ''
        ? { dataAbsentReason: absent }
        : { valueQuantity: { value: Number(value), unit, system: 'http://unitsofmeasure.org', code } };
    const core = 'http://hl7.org/fhir/us/core/StructureDefinition';
    const r4 = 'http://hl7.org/fhir/StructureDefinition';
    /** The profiles 8.0.0 lists: a base vital-sign profile (and its 3.1.1) where there is one, then US Core's. */
    const profiles = (
      legacy: string | undefined,
      usCore: string,
      versions = ['', '|3.1.1', '|7.0.0', '|8.0.0'],
    ): string[] =>
      legacy === undefined
        ? versions.map((v) => `${core}/${usCore}${v}`)
        : [legacy, `${legacy}|3.1.1`, ...['', '|7.0.0', '|8.0.0'].map((v) => `${core}/${usCore}${v}`)];
    const base = (key: string, code: { code: string; display: string }[], profile: string[]): Resource => ({
      id: makeUuid(`${v.uuid}:${key}`),
      meta: this.meta(iso(v.date), profile),
      resourceType: 'Observation',
      status: 'final',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
      ],
      code: {
        coding: code.map((c) => ({ system: 'http://loinc.org', ...c })),
        ...(key.startsWith('spo2') ? { text: 'oxygen_saturation' } : {}),
      },
      subject,
      encounter,
      effectiveDateTime: iso(v.date),
    });
    const oxygen = {
      component: [
        {
          code: { coding: [{ system: 'http://loinc.org', code: '3151-8', display: 'Inhaled oxygen flow rate' }] },
          dataAbsentReason: absent,
        },
        {
          code: { coding: [{ system: 'http://loinc.org', code: '3150-0', display: 'Inhaled oxygen concentration' }] },
          dataAbsentReason: absent,
        },
      ],
    };
    const spo2 = [
      { code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
      { code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
    ];
    const members: [string, string, Resource][] = [
      [
        'resp',
        'Respiratory Rate',
        {
          ...base(
            'resp',
            [{ code: '9279-1', display: 'Respiratory Rate' }],
            profiles(`${r4}/resprate`, 'us-core-respiratory-rate'),
          ),
          ...quantity(v.respiration, '/min', '/min'),
        },
      ],
      [
        'pulse',
        'Heart rate',
        {
          ...base(
            'pulse',
            [{ code: '8867-4', display: 'Heart rate' }],
            profiles(`${r4}/heartrate`, 'us-core-heart-rate'),
          ),
          ...quantity(v.pulse, '/min', '/min'),
        },
      ],
      [
        'spo2',
        'Oxygen saturation in Arterial blood',
        {
          ...base('spo2', spo2, profiles(undefined, 'us-core-pulse-oximetry')),
          ...quantity(v.oxygen_saturation, '%', '%'),
          ...oxygen,
        },
      ],
      [
        'spo2-ox',
        'Oxygen saturation in Arterial blood by Pulse oximetry',
        { ...base('spo2-ox', spo2, profiles(undefined, 'us-core-pulse-oximetry')), ...oxygen },
      ],
      [
        'temp',
        'Body Temperature',
        {
          ...base(
            'temp',
            [{ code: '8310-5', display: 'Body Temperature' }],
            profiles(`${r4}/bodytemp`, 'us-core-body-temperature'),
          ),
          ...quantity(v.temperature, 'degF', '[degF]'),
        },
      ],
      [
        'temp-loc',
        'Temperature Location',
        {
          ...base(
            'temp-loc',
            [{ code: '8327-9', display: 'Temperature Location' }],
            profiles(undefined, 'us-core-simple-observation', ['', '|7.0.0', '|8.0.0']),
          ),
          dataAbsentReason: absent,
        },
      ],
      [
        'height',
        'Body height',
        {
          ...base(
            'height',
            [{ code: '8302-2', display: 'Body height' }],
            profiles(`${r4}/bodyheight`, 'us-core-body-height'),
          ),
          ...quantity(v.height, 'in_i', '[in_i]'),
        },
      ],
      [
        'head',
        'Head Occipital-frontal circumference',
        {
          ...base(
            'head',
            [{ code: '9843-4', display: 'Head Occipital-frontal circumference' }],
            profiles(undefined, 'us-core-head-circumference'),
          ),
          ...quantity(v.head_circ, 'in_i', '[in_i]'),
        },
      ],
      [
        'weight',
        'Body weight',
        {
          ...base(
            'weight',
            [{ code: '29463-7', display: 'Body weight' }],
            profiles(`${r4}/bodyweight`, 'us-core-body-weight'),
          ),
          ...quantity(v.weight, 'lb_av', '[lb_av]'),
        },
      ],
      [
        'bmi',
        'Body mass index (BMI) [Ratio]',
        {
          ...base(
            'bmi',
            [{ code: '39156-5', display: 'Body mass index (BMI) [Ratio]' }],
            profiles(undefined, 'us-core-bmi'),
          ),
          ...quantity(v.BMI, 'kg/m2', 'kg/m2'),
        },
      ],
      [
        'bp',
        'Blood pressure systolic and diastolic',
        {
          ...base(
            'bp',
            [{ code: '85354-9', display: 'Blood pressure systolic and diastolic' }],
            profiles(`${r4}/bp`, 'us-core-blood-pressure'),
          ),
          component: [
            {
              code: { coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' }] },
              ...quantity(v.bps, 'mm[Hg]', 'mm[Hg]'),
            },
            {
              code: { coding: [{ system: 'http://loinc.org', code: '8462-4', display: 'Diastolic blood pressure' }] },
              ...quantity(v.bpd, 'mm[Hg]', 'mm[Hg]'),
            },
          ],
        },
      ],
    ];
    const extra: Resource[] = [
      {
        ...base(
          'head-pct',
          [{ code: '8289-1', display: 'Head Occipital-frontal circumference Percentile' }],
          profiles(undefined, 'head-occipital-frontal-circumference-percentile'),
        ),
        dataAbsentReason: absent,
      },
      {
        ...base(
          'bmi-pct',
          [{ code: '59576-9', display: 'Body mass index (BMI) [Percentile] Per age and sex' }],
          profiles(undefined, 'pediatric-bmi-for-age'),
        ),
        dataAbsentReason: absent,
      },
      {
        ...base(
          'wfl',
          [{ code: '77606-2', display: 'Weight-for-length Per age and sex' }],
          profiles(undefined, 'pediatric-weight-for-height'),
        ),
        dataAbsentReason: absent,
      },
    ];
    const panel: Resource = {
      ...base(
        'panel',
        [
          {
            code: '85353-1',
            display: 'Vital signs, weight, height, head circumference, oxygen saturation and BMI panel',
          },
        ],
        profiles('http://hl7.org/fhir/R4/observation-vitalsigns', 'us-core-vital-signs'),
      ),
      ...(v.note ? { note: [{ text: v.note }] } : {}),
      hasMember: members.map(([, display, r]) => ({ reference: `Observation/${r.id}`, type: 'Observation', display })),
    };
    return [panel, ...members.map(([, , r]) => r), ...extra];
  }

  /** A stored document as a DocumentReference (recorded-8.0.0 file 66): category by name, content by Binary. */
  documentReference(d: DocumentRow, origin: string): Resource {
    const facility = this.t.facilities[0];
    const org = facility ? { reference: `Organization/${facility.uuid}`, type: 'Organization' } : undefined;
    const category = this.t.categories.find((c) => c.id === d.category_id);
    return {
      id: d.uuid,
      meta: { versionId: '1', lastUpdated: iso(d.date) },
      resourceType: 'DocumentReference',
      identifier: [{ value: d.uuid }],
      status: 'current',
      type: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor', code: 'UNK', display: 'unknown' }],
      },
      category: [{ text: category?.name ?? '' }],
      subject: this.patientRef(d.pid),
      date: iso(d.date),
      author: org ? [org] : undefined,
      custodian: org,
      content: [
        {
          attachment: {
            contentType: d.mimetype,
            url: `${origin}/apis/${this.ctx.site}/fhir/Binary/${d.uuid}`,
            title: d.name,
          },
          format: {
            system: 'http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem',
            code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient',
            display: 'mimeType Sufficient',
          },
        },
      ],
    };
  }

  /**
   * `GET /fhir/Binary/{id}`: the raw file, whatever the `Accept` header says, as a download (recorded-8.0.0
   * file 67); 404 `[]` for an unknown id.
   */
  binary(): (input: RouteInput) => EmulatorResponse {
    return ({ params }) => {
      const d = this.t.documents.find((x) => x.uuid === params['uuid']);
      if (!d) return json(404, []);
      const content = Buffer.from(d.content, 'base64');
      return {
        status: 200,
        headers: {
          'content-description': 'File Transfer',
          'content-type': d.mimetype,
          'content-disposition': `attachment; filename=${d.name}`,
          expires: '0',
          pragma: 'public',
          'content-length': String(content.length),
          'cache-control': 'max-age=0, private, must-revalidate',
        },
        body: content,
      };
    };
  }

  private practitioner(u: UserRow): Resource {
    return {
      resourceType: 'Practitioner',
      id: u.uuid,
      meta: { versionId: '1', lastUpdated: undefined },
      identifier: u.npi ? [{ system: 'http://hl7.org/fhir/sid/us-npi', value: u.npi }] : undefined,
      active: u.active === '1',
      name: [
        {
          use: 'official',
          family: u.lname,
          given: [u.fname, ...(u.mname ? [u.mname] : [])],
          ...(u.title ? { prefix: [u.title] } : {}),
        },
      ],
      telecom: u.email ? [{ system: 'email', value: u.email, use: 'work' }] : undefined,
    };
  }

  private organization(f: FacilityRow): Resource {
    return {
      resourceType: 'Organization',
      id: f.uuid,
      meta: { versionId: '1' },
      identifier: f.facility_npi ? [{ system: 'http://hl7.org/fhir/sid/us-npi', value: f.facility_npi }] : undefined,
      active: true,
      type: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/organization-type',
              code: 'prov',
              display: 'Healthcare Provider',
            },
          ],
        },
      ],
      name: f.name,
      telecom: f.phone ? [{ system: 'phone', value: f.phone, use: 'work' }] : undefined,
      address: [
        {
          line: f.street ? [f.street] : undefined,
          city: f.city || undefined,
          state: f.state || undefined,
          postalCode: f.postal_code || undefined,
        },
      ],
    };
  }

  private all(type: string, origin: string): Resource[] {
    switch (type) {
      case 'Patient':
        return this.t.patients.map((p) => this.patient(p));
      case 'Encounter':
        return this.t.encounters.map((e) => this.encounter(e));
      case 'Condition':
        return this.t.lists.filter((l) => l.type === 'medical_problem').map((l) => this.condition(l));
      case 'AllergyIntolerance':
        return this.t.lists.filter((l) => l.type === 'allergy').map((l) => this.allergy(l));
      case 'MedicationRequest':
        return [
          ...this.t.prescriptions.map((r) => this.medicationRequestFromRx(r)),
          ...this.t.lists
            .filter((l) => l.type === 'medication' && l.uuid !== null)
            .map((l) => this.medicationRequestFromList(l)),
        ];
      case 'DocumentReference':
        return this.t.documents.map((d) => this.documentReference(d, origin));
      case 'Observation':
        // Vitals 8.0.0 stored while answering 500 have no uuid, and FHIR does not show them: file 78 lists
        // one form (15 entries) for a patient who also has the form file 26 stored that way.
        return this.t.vitals.filter((v) => v.activity === '1' && v.uuid !== null).flatMap((v) => this.observations(v));
      case 'Practitioner':
        return this.t.users.filter((u) => u.npi !== '').map((u) => this.practitioner(u));
      case 'Organization':
        return this.t.facilities.map((f) => this.organization(f));
      default:
        return [];
    }
  }

  // ------------------------------------------------------------------- search

  private matches(r: Resource, key: string, value: string): boolean {
    const get = (path: string): unknown => r[path];
    const text = (v: unknown): string => JSON.stringify(v ?? '').toLowerCase();
    const val = value.toLowerCase();
    switch (key) {
      case '_id':
        return value.split(',').includes(r.id);
      case '_lastUpdated':
        return true;
      case 'patient': {
        const ref = (get('subject') ?? get('patient')) as { reference?: string } | undefined;
        const id = value.replace(/^Patient\//, '');
        return ref?.reference === `Patient/${id}`;
      }
      case 'name':
        return text(get('name')).includes(val);
      case 'family':
        return ((get('name') as { family?: string }[] | undefined) ?? []).some((n) =>
          (n.family ?? '').toLowerCase().startsWith(val),
        );
      case 'given':
        return ((get('name') as { given?: string[] }[] | undefined) ?? []).some((n) =>
          (n.given ?? []).some((g) => g.toLowerCase().startsWith(val)),
        );
      case 'birthdate':
        return get('birthDate') === value.replace(/^eq/, '');
      case 'gender':
        return get('gender') === val;
      case 'identifier':
        return text(get('identifier')).includes(val);
      case 'email':
      case 'phone':
      case 'telecom':
        return text(get('telecom')).includes(val);
      case 'address':
      case 'address-city':
      case 'address-postalcode':
      case 'address-state':
        return text(get('address')).includes(val);
      case 'category':
        return text(get('category')).includes(`"code":"${val.split('|').pop() ?? ''}"`);
      case 'code':
        return value
          .split(',')
          .some((c) => text(get('code')).includes(`"code":"${(c.split('|').pop() ?? '').toLowerCase()}"`));
      case 'status':
        return get('status') === value;
      case 'intent':
        return get('intent') === value;
      case 'active':
        return String(get('active')) === value;
      case 'date': {
        const m = /^(eq|ge|gt|le|lt)?(.+)$/.exec(value);
        const when = String(get('effectiveDateTime') ?? (get('period') as { start?: string } | undefined)?.start ?? '');
        if (!m || when === '') return false;
        const [, op = 'eq', bound = ''] = m;
        const a = when.slice(0, bound.length);
        return op === 'eq'
          ? a === bound
          : op === 'ge'
            ? a >= bound
            : op === 'gt'
              ? a > bound
              : op === 'le'
                ? a <= bound
                : a < bound;
      }
      default:
        return false;
    }
  }

  /**
   * A search Bundle as OpenEMR answers it (recorded-8.0.0 files 55, 66, 97): a `collection` whose `total` is
   * the page size, with only a `self` link naming the site address, and `fullUrl`s without the FHIR path.
   */
  private bundle(input: RouteInput, _type: string, entries: Resource[]): EmulatorResponse {
    const origin = input.req.origin;
    return json(200, {
      meta: { lastUpdated: mysqlDateTime(this.ctx.now()).replace(' ', 'T') },
      resourceType: 'Bundle',
      type: 'collection',
      total: entries.length,
      link: [{ relation: 'self', url: origin }],
      entry: entries.map((resource) => ({ fullUrl: `${origin}/${resource.id}`, resource })),
    });
  }

  /**
   * `GET /fhir/{type}` (also `POST /fhir/{type}/_search` with a form body).
   * @param type - the resource type
   */
  search(type: string): (input: RouteInput) => EmulatorResponse {
    return (input) => {
      const params = input.req.method === 'POST' ? new URLSearchParams(bodyText(input.req)) : input.query;
      const known = SEARCH_PARAMS[type] ?? [];
      let rows = this.all(type, input.req.origin);
      if (input.patient !== undefined)
        rows = rows.filter((r) => this.matches(r, type === 'Patient' ? '_id' : 'patient', input.patient ?? ''));
      for (const [key, value] of params) {
        if (CONTROL_PARAMS.includes(key)) continue;
        // Unknown or unsupported parameters: the validation message is dropped, 200 with an empty Bundle.
        if (!known.includes(key)) return this.bundle(input, type, []);
        rows = rows.filter((r) => this.matches(r, key, value));
      }
      if (type === 'Patient') {
        const offset = Number.parseInt(params.get('_offset') ?? '0', 10);
        if (Number.isFinite(offset) && offset > 0) rows = rows.slice(offset);
      }
      const count = Number.parseInt(params.get('_count') ?? '', 10);
      if (Number.isFinite(count) && count > 0) rows = rows.slice(0, count);
      return this.bundle(input, type, rows);
    };
  }

  /**
   * `GET /fhir/{type}/{uuid}`: 404 with body `[]` for an unknown id; 400 for a malformed one.
   * @param type - the resource type
   */
  read(type: string): (input: RouteInput) => EmulatorResponse {
    return (input) => {
      const id = input.params['uuid'] ?? '';
      if (!isUuid(id))
        return json(400, {
          validationErrors: {
            _id: 'The search field argument was invalid, improperly formatted, or could not be parsed.  Inner message: UUID columns must be a valid UUID string',
          },
        });
      const found = this.all(type, input.req.origin).find((r) => r.id === id);
      return found ? json(200, found) : json(404, []);
    };
  }

  // -------------------------------------------------------------------- write

  private parseResource(
    input: RouteInput,
    type: string,
  ): { body: Record<string, unknown> } | { error: EmulatorResponse } {
    let body: unknown;
    try {
      body = JSON.parse(bodyText(input.req));
    } catch {
      return { error: operationOutcome(400, 'Invalid JSON body') };
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      return { error: operationOutcome(400, 'Body must be a JSON object') };
    const record = body as Record<string, unknown>;
    if (record['resourceType'] !== type) return { error: operationOutcome(400, `resourceType must be ${type}`) };
    return { body: record };
  }

  private static readonly PATIENT_ELEMENTS = [
    'resourceType',
    'id',
    'meta',
    'text',
    'extension',
    'identifier',
    'active',
    'name',
    'telecom',
    'gender',
    'birthDate',
    'deceasedBoolean',
    'deceasedDateTime',
    'address',
    'maritalStatus',
    'communication',
    'generalPractitioner',
  ];

  private patientColumns(
    body: Record<string, unknown>,
  ): { columns: Record<string, string> } | { error: EmulatorResponse } {
    for (const key of Object.keys(body)) {
      if (!FhirApi.PATIENT_ELEMENTS.includes(key)) return { error: operationOutcome(400, `Unknown element ${key}`) };
    }
    // Only the official name is mapped (recorded-8.0.0 file 57: a name without `use` leaves fname/lname empty).
    const name = (Array.isArray(body['name']) ? body['name'] : []).find(
      (n: unknown) => (n as { use?: unknown } | null)?.use === 'official',
    ) as { family?: unknown; given?: unknown[]; prefix?: unknown[] } | undefined;
    const address = (Array.isArray(body['address']) ? body['address'][0] : undefined) as
      Record<string, unknown> | undefined;
    const telecom = (Array.isArray(body['telecom']) ? body['telecom'] : []) as {
      system?: string;
      value?: string;
      use?: string;
    }[];
    const gender = typeof body['gender'] === 'string' ? body['gender'] : undefined;
    const columns: Record<string, string> = {};
    if (name?.family !== undefined) columns['lname'] = String(name.family);
    if (name?.given?.[0] !== undefined) columns['fname'] = String(name.given[0]);
    if (name?.given?.[1] !== undefined) columns['mname'] = String(name.given[1]);
    if (name?.prefix?.[0] !== undefined) columns['title'] = String(name.prefix[0]);
    if (gender !== undefined) columns['sex'] = gender === 'male' ? 'Male' : gender === 'female' ? 'Female' : 'Unknown';
    if (typeof body['birthDate'] === 'string') columns['DOB'] = body['birthDate'];
    if (address) {
      const line = Array.isArray(address['line']) ? address['line'][0] : undefined;
      if (line !== undefined) columns['street'] = String(line);
      for (const [k, c] of [
        ['city', 'city'],
        ['state', 'state'],
        ['postalCode', 'postal_code'],
        ['country', 'country_code'],
      ] as const) {
        if (address[k] !== undefined) columns[c] = String(address[k]);
      }
    }
    for (const t of telecom) {
      if (t.system === 'email' && t.value) columns['email'] = t.value;
      if (t.system === 'phone' && t.value) columns[t.use === 'mobile' ? 'phone_cell' : 'phone_home'] = t.value;
    }
    return { columns };
  }

  /** `POST /fhir/Patient`: 201 `{pid, uuid}`, not a Patient resource, and no Location header (notes §4.1). */
  createPatient(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Patient');
    if ('error' in parsed) return parsed.error;
    const mapped = this.patientColumns(parsed.body);
    if ('error' in mapped) return mapped.error;
    // The mapping fills every column (empty when the resource has no value), so a missing name is NotEmpty.
    const errors = validateFields({ fname: '', lname: '', ...mapped.columns }, [
      { field: 'fname', label: 'First Name', required: true, rules: [{ kind: 'lengthBetween', min: 1, max: 255 }] },
      { field: 'lname', label: 'Last Name', required: true, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
      { field: 'sex', label: 'Sex', required: true, rules: [{ kind: 'lengthBetween', min: 4, max: 30 }] },
      { field: 'DOB', label: 'Date of Birth', required: true, rules: [{ kind: 'datetime', format: ['Y-m-d'] }] },
    ]);
    // 8.x answers a bare `{validationErrors}` here, not an OperationOutcome (recorded file 57).
    if (Object.keys(errors).length > 0)
      return isKernel8(this.ctx.version)
        ? json(400, { validationErrors: errors })
        : operationOutcome(400, JSON.stringify(errors), 'required');
    const id = this.ctx.store.nextId('patient_data.id');
    const pid = this.ctx.store.nextId('patient_data.pid');
    const row = blankPatientRow(String(id), String(pid), makeUuid(), mysqlDateTime(this.ctx.now()));
    Object.assign(row, mapped.columns);
    row.pubpid = String(pid);
    this.t.patients.push(row);
    this.ctx.store.touch('patients');
    return json(201, { pid, uuid: row.uuid });
  }

  /** `PUT /fhir/Patient/{uuid}`: 200 with the updated Patient. */
  updatePatient(input: RouteInput): EmulatorResponse {
    const row = this.t.patients.find((p) => p.uuid === input.params['uuid']);
    if (!row) return json(404, []);
    const parsed = this.parseResource(input, 'Patient');
    if ('error' in parsed) return parsed.error;
    const mapped = this.patientColumns(parsed.body);
    if ('error' in mapped) return mapped.error;
    // 8.0.0 fails on the nested extensions of a Patient as it reads it (recorded file 58).
    const nested = (parsed.body['extension'] as { extension?: unknown }[] | undefined)?.some((x) =>
      Array.isArray(x?.extension),
    );
    if (this.ctx.version === '8.0' && nested === true)
      return kernelError(this.ctx.version, 500, 'Call to a member function getUrl() on array');
    const errors = validateFields(mapped.columns, [
      { field: 'lname', label: 'Last Name', required: false, rules: [{ kind: 'lengthBetween', min: 2, max: 255 }] },
      { field: 'sex', label: 'Sex', required: false, rules: [{ kind: 'lengthBetween', min: 4, max: 30 }] },
      { field: 'DOB', label: 'Date of Birth', required: false, rules: [{ kind: 'datetime', format: ['Y-m-d'] }] },
    ]);
    if (Object.keys(errors).length > 0) return operationOutcome(400, JSON.stringify(errors), 'invalid');
    Object.assign(row, mapped.columns);
    row.date = mysqlDateTime(this.ctx.now());
    this.ctx.store.touch('patients');
    return json(200, this.patient(row));
  }

  private practitionerColumns(body: Record<string, unknown>): Record<string, string> {
    const name = (Array.isArray(body['name']) ? body['name'][0] : undefined) as
      { family?: unknown; given?: unknown[]; prefix?: unknown[] } | undefined;
    const identifier = (Array.isArray(body['identifier']) ? body['identifier'] : []) as {
      system?: string;
      value?: string;
    }[];
    const telecom = (Array.isArray(body['telecom']) ? body['telecom'] : []) as { system?: string; value?: string }[];
    const columns: Record<string, string> = {};
    if (name?.family !== undefined) columns['lname'] = String(name.family);
    if (name?.given?.[0] !== undefined) columns['fname'] = String(name.given[0]);
    if (name?.prefix?.[0] !== undefined) columns['title'] = String(name.prefix[0]);
    const npi = identifier.find((i) => i.system === 'http://hl7.org/fhir/sid/us-npi');
    if (npi?.value !== undefined) columns['npi'] = npi.value;
    const email = telecom.find((t) => t.system === 'email');
    if (email?.value !== undefined) columns['email'] = email.value;
    return columns;
  }

  /** `POST /fhir/Practitioner`: 201 `{id, uuid}`. */
  createPractitioner(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Practitioner');
    if ('error' in parsed) return parsed.error;
    const res = this.standard.createPractitioner({
      ...input,
      req: { ...input.req, body: JSON.stringify(this.practitionerColumns(parsed.body)) },
    });
    const body = JSON.parse(typeof res.body === 'string' ? res.body : '{}') as {
      validationErrors?: unknown;
      data?: unknown;
    };
    if (res.status !== 201) return operationOutcome(400, JSON.stringify(body.validationErrors ?? {}), 'invalid');
    return json(201, body.data);
  }

  /** `PUT /fhir/Practitioner/{uuid}`: 200 with the Practitioner. */
  updatePractitioner(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Practitioner');
    if ('error' in parsed) return parsed.error;
    const res = this.standard.updatePractitioner({
      ...input,
      params: { pruuid: input.params['uuid'] ?? '' },
      req: { ...input.req, body: JSON.stringify(this.practitionerColumns(parsed.body)) },
    });
    if (res.status !== 200) return json(404, []);
    const row = this.t.users.find((u) => u.uuid === input.params['uuid']);
    return row ? json(200, this.practitioner(row)) : json(404, []);
  }

  /** `POST /fhir/Organization`: 201 `{id, uuid}`. */
  createOrganization(input: RouteInput): EmulatorResponse {
    const parsed = this.parseResource(input, 'Organization');
    if ('error' in parsed) return parsed.error;
    const name = columnText(parsed.body['name']) ?? '';
    const npi = ((parsed.body['identifier'] ?? []) as { system?: unknown; value?: unknown }[]).find(
      (i) => i.system === 'http://hl7.org/fhir/sid/us-npi',
    );
    // OpenEMR stores an Organization as a facility, whose NPI it requires (recorded-8.0.0 file 59).
    if (isKernel8(this.ctx.version) && (npi?.value === undefined || npi.value === ''))
      return json(400, {
        validationErrors: {
          facility_npi: { 'Required::NON_EXISTENT_KEY': 'facility_npi must be provided, but does not exist' },
        },
      });
    if (name.length < 2)
      return operationOutcome(
        400,
        JSON.stringify({ name: { 'LengthBetween::TOO_SHORT': 'name must be 2 characters or longer' } }),
        'required',
      );
    const id = this.ctx.store.nextId('facility.id');
    const address = (Array.isArray(parsed.body['address']) ? parsed.body['address'][0] : {}) as Record<string, unknown>;
    const row: FacilityRow = {
      id: String(id),
      uuid: makeUuid(),
      name,
      phone: '',
      street: Array.isArray(address['line']) ? String(address['line'][0] ?? '') : '',
      city: columnText(address['city']) ?? '',
      state: columnText(address['state']) ?? '',
      postal_code: columnText(address['postalCode']) ?? '',
      country_code: columnText(address['country']) ?? '',
      facility_npi: columnText(npi?.value) ?? '',
    };
    this.t.facilities.push(row);
    this.ctx.store.touch('facilities');
    return json(201, { id, uuid: row.uuid });
  }

  /** `PUT /fhir/Organization/{uuid}`. */
  updateOrganization(input: RouteInput): EmulatorResponse {
    const row = this.t.facilities.find((f) => f.uuid === input.params['uuid']);
    if (!row) return json(404, []);
    const parsed = this.parseResource(input, 'Organization');
    if ('error' in parsed) return parsed.error;
    const name = columnText(parsed.body['name']);
    if (name !== null) {
      if (name.length < 2) return operationOutcome(400, 'name must be 2 characters or longer');
      row.name = name;
    }
    this.ctx.store.touch('facilities');
    return json(200, this.organization(row));
  }

  // ------------------------------------------------------------- conformance

  /** `GET /fhir/metadata` (no auth), as recorded (8.0.0 file 04): no version in `software`. */
  metadata(input: RouteInput): EmulatorResponse {
    const fhir = this.fhirBase(input);
    const k8 = isKernel8(this.ctx.version);
    const registry = 'http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities';
    return json(200, {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: mysqlDateTime(this.ctx.now()).slice(0, 10),
      kind: 'instance',
      instantiates: [
        'http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server',
        'http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data',
      ],
      software: { name: 'OpenEMR' },
      implementation: { description: 'OpenEMR FHIR API', url: fhir },
      fhirVersion: '4.0.1',
      format: ['application/json'],
      rest: [
        {
          mode: 'server',
          security: {
            extension: SECURITY_CAPABILITIES.map((valueCode) => ({ valueCode, url: registry })),
            service: [
              {
                coding: [
                  {
                    system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                    code: 'SMART-on-FHIR',
                    display: 'SMART-on-FHIR',
                  },
                ],
                text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)',
              },
            ],
          },
          resource: CAPABILITY_RESOURCES.filter(([type]) => k8 || !RESOURCES_SINCE_8.has(type)).map(
            ([type, supported, interactions, params, operations, includes, revIncludes]) => {
              const entry: Record<string, unknown> = {
                type,
                profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
              };
              if (supported.length > 0) entry['supportedProfile'] = supported;
              entry['interaction'] = interactions.map((code) => ({ code }));
              entry['updateCreate'] = false;
              if (includes) entry['searchInclude'] = ['*'];
              if (revIncludes) entry['searchRevInclude'] = ['Provenance:target'];
              if (params.length > 0) entry['searchParam'] = params.map(([name, t]) => ({ name, type: t }));
              if (operations.length > 0)
                entry['operation'] = operations.map(([name, definition]) => ({
                  name,
                  definition: definition.replace('{fhir}', fhir),
                }));
              return entry;
            },
          ),
        },
      ],
    });
  }

  /** `GET /fhir/.well-known/smart-configuration` (no auth; notes §2.1). */
  smartConfiguration(input: RouteInput): EmulatorResponse {
    const oauth = `${input.req.origin}/oauth2/${this.ctx.site}`;
    return json(200, {
      issuer: this.fhirBase(input),
      jwks_uri: `${oauth}/jwk`,
      authorization_endpoint: `${oauth}/authorize`,
      grant_types_supported: ['client_credentials', 'authorization_code'],
      token_endpoint: `${oauth}/token`,
      capabilities: [
        'launch-ehr',
        'launch-standalone',
        'client-confidential-symmetric',
        'client-confidential-asymmetric',
        'client-public',
        'context-banner',
        'context-ehr-patient',
        'context-style',
        'context-standalone-patient',
        'sso-openid-connect',
        'permission-user',
        'permission-patient',
        'permission-offline',
        'permission-v1',
        ...(isKernel8(this.ctx.version) ? ['permission-v2'] : []),
        'authorize-post',
        'context-ehr-encounter',
      ],
      code_challenge_methods_supported: ['S256'],
      // An array inside an array, as OpenEMR answers it (recorded-8.0.0 file 03).
      scopes_supported: [supportedScopes(isKernel8(this.ctx.version))],
      introspection_endpoint: `${oauth}/introspect`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
      response_types_supported: [...RESPONSE_TYPES],
    });
  }
}
