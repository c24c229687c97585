/**
 * The server's {@link PatientRecords} port over `@cdss/openemr-client`: maps OpenEMR's records to the API's shapes.
 */
import type { OpenEmrClient } from '@cdss/openemr-client';
import type { ApiPatient, PatientInput } from '../api-schemas.js';
import type { ClinicalLists, PatientPage, PatientRecords } from '../domain/ports.js';
import { notFound } from '../http/errors.js';

type OpenEmrPatient = Awaited<ReturnType<OpenEmrClient['patients']['get']>> & object;

const SEX_TO_OPENEMR: Record<PatientInput['sex'], string> = {
  female: 'Female',
  male: 'Male',
  other: 'Unknown',
  unknown: 'Unknown',
};

function sexFromOpenEmr(sex: string | null | undefined): PatientInput['sex'] {
  const value = (sex ?? '').toLowerCase();
  return value === 'female' ? 'female' : value === 'male' ? 'male' : 'unknown';
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value : undefined;

/**
 * An OpenEMR patient in the API's shape.
 * @param patient - the OpenEMR record
 */
export function toApiPatient(patient: OpenEmrPatient): ApiPatient {
  const address = {
    ...(text(patient.street) ? { line: text(patient.street) } : {}),
    ...(text(patient.city) ? { city: text(patient.city) } : {}),
    ...(text(patient.state) ? { state: text(patient.state) } : {}),
    ...(text(patient.postal_code) ? { postalCode: text(patient.postal_code) } : {}),
    ...(text(patient.country_code) ? { country: text(patient.country_code) } : {}),
  };
  return {
    id: patient.uuid,
    pid: String(patient.pid),
    givenName: patient.fname,
    familyName: patient.lname,
    birthDate: (patient.DOB ?? '').slice(0, 10),
    sex: sexFromOpenEmr(patient.sex),
    ...((text(patient.phone_home) ?? text(patient.phone_cell))
      ? { phone: text(patient.phone_home) ?? text(patient.phone_cell) }
      : {}),
    ...(text(patient.email) ? { email: text(patient.email) } : {}),
    ...(Object.keys(address).length > 0 ? { address } : {}),
  };
}

/**
 * API input as OpenEMR fields.
 * @param input - the API's patient input
 */
export function toOpenEmrPatient(input: PatientInput) {
  return {
    fname: input.givenName,
    lname: input.familyName,
    DOB: input.birthDate,
    sex: SEX_TO_OPENEMR[input.sex],
    ...(input.phone ? { phone_home: input.phone } : {}),
    ...(input.email ? { email: input.email } : {}),
    ...(input.address?.line ? { street: input.address.line } : {}),
    ...(input.address?.city ? { city: input.address.city } : {}),
    ...(input.address?.state ? { state: input.address.state } : {}),
    ...(input.address?.postalCode ? { postal_code: input.address.postalCode } : {}),
    ...(input.address?.country ? { country_code: input.address.country } : {}),
  };
}

/**
 * A name folded for matching: lower case, without accents (NFD, combining marks removed), as a case- and
 * accent-insensitive collation compares them.
 * @param name - a name or a search word
 */
export function foldName(name: string): string {
  return name.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** The words of a search, as typed and folded ("Rossi, Maria" → rossi, maria). */
function searchWords(q: string): Array<{ raw: string; folded: string }> {
  return q
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map((raw) => ({ raw, folded: foldName(raw) }));
}

const num = (value: unknown): number | undefined => {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) && n !== 0 ? n : undefined;
};

/**
 * The port over a client.
 * @param client - an OpenEMR client with a patient-scoped token
 */
export function openEmrRecords(client: OpenEmrClient): PatientRecords {
  async function requirePatient(id: string): Promise<OpenEmrPatient> {
    const patient = await client.patients.get(id);
    if (!patient) throw notFound('Patient');
    return patient;
  }

  const lists = {
    async encounters(id: string): Promise<ClinicalLists['encounters']> {
      const encounters = await client.encounters.list(id);
      return encounters.map((e) => ({
        id: e.euuid,
        date: (e.date ?? '').slice(0, 10),
        ...(text(e.reason) ? { reason: text(e.reason) } : {}),
        ...(text(e.class_code) ? { class: text(e.class_code) } : {}),
      }));
    },
    async problems(id: string): Promise<ClinicalLists['problems']> {
      return (await client.medicalProblems.list(id)).map((p) => ({
        id: p.uuid ?? String(p.id),
        title: p.title,
        ...(text(p.diagnosis) ? { code: text(p.diagnosis) } : {}),
        ...(text(p.begdate) ? { onset: text(p.begdate) } : {}),
        active: !text(p.enddate),
      }));
    },
    async allergies(id: string): Promise<ClinicalLists['allergies']> {
      return (await client.allergies.list(id)).map((a) => ({
        id: a.uuid ?? String(a.id),
        substance: a.title,
        ...(text(a.comments) ? { reaction: text(a.comments) } : {}),
        active: !text(a.enddate),
      }));
    },
    async medications(id: string): Promise<ClinicalLists['medications']> {
      const patient = await requirePatient(id);
      return (await client.medications.list(patient.pid)).map((m) => ({
        id: m.uuid ?? String(m.id),
        name: m.title,
        ...(text(m.comments) ? { dosage: text(m.comments) } : {}),
        ...(text(m.begdate) ? { start: text(m.begdate) } : {}),
        active: !text(m.enddate),
      }));
    },
    async vitals(id: string): Promise<ClinicalLists['vitals']> {
      const patient = await requirePatient(id);
      const encounters = await client.encounters.list(id);
      const perEncounter = await Promise.all(
        encounters.map((e) => client.vitals.list({ pid: patient.pid, eid: e.eid })),
      );
      return perEncounter.flat().map((v) => {
        const fahrenheit = num(v.temperature);
        const pounds = num(v.weight);
        const inches = num(v.height);
        return {
          id: v.uuid ?? String(v.id),
          date: (v.date ?? '').slice(0, 10),
          ...(num(v.bps) ? { bpSystolic: num(v.bps) } : {}),
          ...(num(v.bpd) ? { bpDiastolic: num(v.bpd) } : {}),
          ...(num(v.pulse) ? { pulse: num(v.pulse) } : {}),
          // OpenEMR stores US units (°F, lb, in) in form_vitals.
          ...(fahrenheit ? { temperatureC: Math.round((((fahrenheit - 32) * 5) / 9) * 10) / 10 } : {}),
          ...(pounds ? { weightKg: Math.round(pounds * 0.45359237 * 10) / 10 } : {}),
          ...(inches ? { heightCm: Math.round(inches * 2.54 * 10) / 10 } : {}),
          ...(num(v.oxygen_saturation) ? { oxygenSaturation: num(v.oxygen_saturation) } : {}),
        };
      });
    },
  };

  return {
    async search({ q, limit, cursor }): Promise<PatientPage> {
      const offset = cursor ? Number.parseInt(Buffer.from(cursor, 'base64url').toString('utf8'), 10) || 0 : 0;
      const words = searchWords(q ?? '');
      if (words.length === 0) {
        const page = await client.patients.page({}, { limit, offset });
        return {
          items: page.patients.map(toApiPatient),
          ...(page.hasMore ? { nextCursor: Buffer.from(String(offset + limit)).toString('base64url') } : {}),
        };
      }
      // OpenEMR matches lname and fname with a contains match in a case- and accent-insensitive MySQL collation,
      // one field at a time: ask it for the longest word in either field, then keep the patients whose names hold
      // every word (folded the same way here, so the answer does not depend on the upstream's collation).
      const probe = words.reduce((a, b) => (b.raw.length > a.raw.length ? b : a)).raw;
      const [byLast, byFirst] = await Promise.all([
        client.patients.list({ lname: probe }),
        client.patients.list({ fname: probe }),
      ]);
      const unique = new Map([...byLast, ...byFirst].map((p) => [p.uuid, p]));
      const all = [...unique.values()].filter((p) => {
        const name = foldName(`${p.fname} ${p.mname ?? ''} ${p.lname}`);
        return words.every((word) => name.includes(word.folded));
      });
      const items = all.slice(offset, offset + limit).map(toApiPatient);
      return {
        items,
        ...(offset + limit < all.length
          ? { nextCursor: Buffer.from(String(offset + limit)).toString('base64url') }
          : {}),
      };
    },
    async duplicates(input) {
      const sameBirthDate = await client.patients.list({ lname: input.familyName, DOB: input.birthDate });
      const given = foldName(input.givenName);
      const family = foldName(input.familyName);
      return sameBirthDate.filter((p) => foldName(p.fname) === given && foldName(p.lname) === family).map(toApiPatient);
    },
    async get(id) {
      const patient = await client.patients.get(id);
      return patient ? toApiPatient(patient) : undefined;
    },
    async create(input) {
      const created = await client.patients.create(toOpenEmrPatient(input));
      return toApiPatient(await requirePatient(created.uuid));
    },
    async update(id, input) {
      return toApiPatient(await client.patients.update(id, toOpenEmrPatient(input)));
    },
    async matching(input) {
      const wanted: Record<string, string> = toOpenEmrPatient(input);
      // OpenEMR matches names by prefix and DOB/sex exactly (notes §3.2); the rest is compared here.
      const candidates = await client.patients.list({
        fname: input.givenName,
        lname: input.familyName,
        DOB: input.birthDate,
        sex: wanted['sex'],
      });
      const same = (patient: OpenEmrPatient): boolean =>
        Object.entries(wanted).every(([field, value]) => {
          const actual = (patient as Record<string, unknown>)[field];
          return (field === 'DOB' ? String(actual ?? '').slice(0, 10) : String(actual ?? '')) === value;
        });
      return candidates.filter(same).map((patient) => patient.uuid);
    },
    async list(id, kind) {
      return lists[kind](id) as never;
    },
    async ping() {
      await client.patients.page({}, { limit: 1 });
    },
  };
}
