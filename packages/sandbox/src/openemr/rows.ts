/**
 * Fresh rows of the emulator's tables with OpenEMR's column defaults, shared by the seed data and the
 * write routes so that a column added to a row type gets its default in one place.
 */
import type { ListRow, PatientRow, UserRow } from './types.js';

/**
 * A fresh `patient_data` row.
 * @param id - `patient_data.id`
 * @param pid - the numeric pid
 * @param uuid - the patient uuid
 * @param now - MySQL `Y-m-d H:i:s`, for `date` and `regdate`
 */
export function blankPatientRow(id: string, pid: string, uuid: string, now: string): PatientRow {
  return {
    id,
    pid,
    uuid,
    pubpid: '',
    title: '',
    fname: '',
    mname: '',
    lname: '',
    DOB: '',
    sex: '',
    ss: '',
    street: '',
    postal_code: '',
    city: '',
    state: '',
    county: '',
    country_code: '',
    drivers_license: '',
    contact_relationship: '',
    phone_contact: '',
    phone_home: '',
    phone_biz: '',
    phone_cell: '',
    email: '',
    email_direct: '',
    race: '',
    ethnicity: '',
    status: '',
    providerID: null,
    date: now,
    regdate: now,
  };
}

/**
 * A fresh `users` row: an authorised, active user with no login and no facility.
 * @param id - `users.id`
 * @param uuid - the user uuid
 */
export function blankUserRow(id: string, uuid: string): UserRow {
  return {
    id,
    uuid,
    username: '',
    password: null,
    authorized: '1',
    title: '',
    fname: '',
    mname: '',
    lname: '',
    npi: '',
    email: '',
    specialty: '',
    facility_id: null,
    federaltaxid: '',
    federaldrugid: '',
    upin: '',
    active: '1',
  };
}

/**
 * A fresh, active, confirmed `lists` row with an empty title.
 * @param key - the row's identity, owner and author (`user` is a username, `date` MySQL `Y-m-d H:i:s`)
 */
export function blankListRow(key: Pick<ListRow, 'id' | 'uuid' | 'pid' | 'type' | 'user' | 'date'>): ListRow {
  return {
    id: key.id,
    uuid: key.uuid,
    pid: key.pid,
    type: key.type,
    title: '',
    begdate: null,
    enddate: null,
    diagnosis: '',
    comments: null,
    activity: '1',
    outcome: '0',
    occurrence: '0',
    verification: 'confirmed',
    reaction: '',
    severity_al: null,
    user: key.user,
    date: key.date,
  };
}
