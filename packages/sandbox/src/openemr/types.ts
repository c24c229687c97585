/**
 * Row shapes of the emulator's tables. They mirror OpenEMR's MySQL tables, where every column comes
 * back from PDO as a string (or null): that is what the real API serialises, so the rows keep it.
 * These types are the emulator's own and are deliberately not shared with `@cdss/openemr-client`.
 */

/** A row of `patient_data` (the subset of its ~100 columns the emulator keeps, plus pass-through). */
export interface PatientRow {
  id: string;
  pid: string;
  uuid: string;
  pubpid: string;
  title: string;
  fname: string;
  mname: string;
  lname: string;
  DOB: string;
  sex: string;
  ss: string;
  street: string;
  postal_code: string;
  city: string;
  state: string;
  county: string;
  country_code: string;
  drivers_license: string;
  contact_relationship: string;
  phone_contact: string;
  phone_home: string;
  phone_biz: string;
  phone_cell: string;
  email: string;
  email_direct: string;
  race: string;
  ethnicity: string;
  status: string;
  providerID: string | null;
  date: string;
  regdate: string;
  [column: string]: string | null;
}

/** A row of `form_encounter` joined with its category, class, facility and provider. */
export interface EncounterRow {
  id: string;
  uuid: string;
  encounter: string;
  pid: string;
  date: string;
  onset_date: string | null;
  reason: string;
  facility: string;
  /** `null` when the create named none (8.0.0 stores NULL, recorded). */
  facility_id: string | null;
  billing_facility: string;
  sensitivity: string;
  referral_source: string;
  pos_code: string;
  external_id: string;
  pc_catid: string;
  class_code: string;
  provider_id: string;
  user: string;
  group: string;
  last_update: string;
}

/** The columns every encounter form row has (`form_vitals`, `form_soap`), with the `forms.id` it is registered under. */
export interface FormRow {
  id: string;
  fid: string;
  pid: string;
  eid: string;
  date: string;
  user: string;
  groupname: string;
  authorized: string;
  activity: string;
}

/** A row of `form_vitals`. */
export interface VitalRow extends FormRow {
  /** `null` for vitals 8.0.0 stored while answering 500 (it registers no uuid, recorded file 26). */
  uuid: string | null;
  bps: string | null;
  bpd: string | null;
  weight: string | null;
  height: string | null;
  temperature: string | null;
  temp_method: string | null;
  pulse: string | null;
  respiration: string | null;
  note: string | null;
  BMI: string | null;
  BMI_status: string | null;
  waist_circ: string | null;
  head_circ: string | null;
  oxygen_saturation: string | null;
}

/** A row of `form_soap`. */
export interface SoapNoteRow extends FormRow {
  subjective: string | null;
  objective: string | null;
  assessment: string | null;
  plan: string | null;
}

/** A row of `lists`: medical problems, allergies, medications, surgeries and dental issues. */
export interface ListRow {
  id: string;
  /** `null` for medications added through 8.0.0's API (it registers no uuid: its list then fails, recorded). */
  uuid: string | null;
  pid: string;
  type: 'medical_problem' | 'allergy' | 'medication' | 'surgery' | 'dental';
  title: string;
  begdate: string | null;
  enddate: string | null;
  diagnosis: string;
  comments: string | null;
  activity: string;
  outcome: string;
  occurrence: string;
  verification: string;
  reaction: string;
  severity_al: string | null;
  /** The author; `null` for rows added through the API (recorded). */
  user: string | null;
  date: string;
}

/** A row of `openemr_postcalendar_events`. */
export interface AppointmentRow {
  pc_eid: string;
  pc_uuid: string;
  pid: string;
  pc_aid: string | null;
  pc_catid: string;
  pc_title: string;
  pc_duration: string;
  pc_hometext: string;
  pc_apptstatus: string;
  pc_eventDate: string;
  pc_startTime: string;
  pc_endTime: string;
  pc_facility: string;
  pc_billing_location: string;
}

/** A row of `prescriptions`. */
export interface PrescriptionRow {
  id: string;
  uuid: string;
  pid: string;
  encounter: string | null;
  provider_id: string | null;
  drug: string;
  rxnorm_drugcode: string;
  dosage: string;
  quantity: string;
  route: string;
  unit: string;
  interval: string;
  refills: string;
  note: string;
  start_date: string;
  date_added: string;
  active: string;
}

/** A row of `procedure_order` with its first code. */
export interface ProcedureRow {
  procedure_order_id: string;
  uuid: string;
  pid: string;
  encounter_id: string | null;
  provider_id: string | null;
  date_ordered: string;
  order_status: string;
  procedure_code: string;
  procedure_name: string;
  clinical_hx: string;
}

/** A row of `users`: API users (password grant) and practitioners. */
export interface UserRow {
  id: string;
  uuid: string;
  username: string;
  /** scrypt hash `salt:hash`, hex; never the password itself. */
  password: string | null;
  authorized: string;
  title: string;
  fname: string;
  mname: string;
  lname: string;
  npi: string;
  email: string;
  specialty: string;
  facility_id: string | null;
  federaltaxid: string;
  federaldrugid: string;
  upin: string;
  active: string;
}

/** A row of `facility`. */
export interface FacilityRow {
  id: string;
  uuid: string;
  name: string;
  phone: string;
  street: string;
  city: string;
  state: string;
  postal_code: string;
  country_code: string;
  facility_npi: string;
  /** The facility's address row (`facility_location_uuid` in encounters). */
  location_uuid?: string;
}

/** A registered OAuth2 client (`oauth_clients`). */
export interface OAuthClientRow {
  client_id: string;
  client_secret: string | null;
  client_name: string;
  client_role: 'user' | 'patient' | 'system';
  is_confidential: boolean;
  is_enabled: boolean;
  redirect_uris: string[];
  grant_types: string[];
  scope: string[];
  token_endpoint_auth_method: string;
  jwks: unknown;
  jwks_uri: string | null;
  registration_access_token: string;
  registration_client_uri_path: string;
  dsi_type: string;
  contacts: string[];
  created: number;
  /** The app's launch URL (EHR launch). */
  initiate_login_uri?: string | null;
  /** Admin setting "Skip EHR Launch Authorization Flow" (recorded-8.0.0 file 87). */
  skip_ehr_launch_authorization_flow?: boolean;
}

/** A document category (`categories`): a tree under the root `Categories`. */
export interface CategoryRow {
  id: string;
  name: string;
  parent: string;
}

/** A patient document (`documents`), with its bytes. */
export interface DocumentRow {
  id: string;
  uuid: string;
  pid: string;
  category_id: string;
  /** The file name as uploaded. */
  name: string;
  mimetype: string;
  size: number;
  /** SHA3-512 of the content, hex (what OpenEMR lists as `hash`). */
  hash: string;
  docdate: string;
  date: string;
  /** The content, base64. */
  content: string;
}

/** An issued token or authorization code (`api_token` / `api_refresh_token` / codes). */
export interface TokenRow {
  kind: 'access' | 'refresh' | 'code';
  token: string;
  client_id: string;
  user_id: string | null;
  role: 'users' | 'patient' | 'system';
  scope: string[];
  expires_at: number;
  revoked: boolean;
  /** Authorization codes only: PKCE and redirect binding. */
  code_challenge?: string | null;
  code_challenge_method?: string | null;
  redirect_uri?: string | null;
  /** The grant an access and a refresh token were issued together in (a refresh revokes that access token). */
  grant?: string | undefined;
  /** SMART launch context granted with the code (and kept on the tokens issued from it). */
  context?: { patient?: string; encounter?: string; intent?: string; needPatientBanner?: boolean } | null;
}
