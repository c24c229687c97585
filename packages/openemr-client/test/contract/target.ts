/**
 * Where the contract suite runs: the sandbox's emulator (each release profile, over real HTTP on
 * 127.0.0.1:0), or a live OpenEMR named by environment variables. The suite creates its own synthetic data
 * (names with a random suffix), leaves whatever the server already holds alone, and deletes what the API
 * lets it delete. Test-only.
 *
 * A live run needs: `CDSS_TEST_OPENEMR_URL` (the server root), `CDSS_TEST_OPENEMR_CLIENT_ID`,
 * `CDSS_TEST_OPENEMR_CLIENT_SECRET`, `CDSS_TEST_OPENEMR_USERNAME`, `CDSS_TEST_OPENEMR_PASSWORD`; optionally
 * `CDSS_TEST_OPENEMR_VERSION` (`7.0`, `8.0`, `8.2`; default detected), `CDSS_TEST_OPENEMR_SITE` (default
 * `default`), `CDSS_TEST_OPENEMR_FACILITY_ID` (for appointments; default 3, OpenEMR's first facility) and
 * `CDSS_TEST_OPENEMR_DOCUMENT_CATEGORY` (default `Lab_Report`). See the package README.
 */
import { randomBytes } from 'node:crypto';
import { SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import axios from 'axios';
import {
  cdssScopes,
  createOpenEmrClient,
  detectOpenEmrVersion,
  type OpenEmrClient,
  type OpenEmrVersion,
} from '../../src/index.js';
import { startHarness, type Harness } from './harness.js';

/** A server the suite runs against. */
export interface ContractTarget {
  /** `emulator 8.0`, or `live https://emr.example`. */
  name: string;
  /** The client, logged in with the password grant. */
  client: OpenEmrClient;
  /** The server root. */
  baseUrl: string;
  /** The OpenEMR site (`default`). */
  site: string;
  /** A facility id for appointments. */
  facilityId: string;
  /** The latest id token of the client's login (to log the session out). */
  idToken(): string | undefined;
  /** How many HTTP requests the client sent so far (to prove refusals before sending). */
  sent(): number;
  /** The emulator harness (only for the emulator target: spec checks). */
  harness?: Harness | undefined;
  close(): Promise<void>;
}

/** Whether a live OpenEMR is configured (`CDSS_TEST_OPENEMR_URL`). */
export function liveConfigured(): boolean {
  return (process.env['CDSS_TEST_OPENEMR_URL'] ?? '') !== '';
}

/** A random suffix for synthetic names (letters only: OpenEMR's name searches are `LIKE`). */
export function suffix(): string {
  return [...randomBytes(6)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
}

function counted(): { instance: ReturnType<typeof axios.create>; sent: () => number } {
  const instance = axios.create();
  let n = 0;
  instance.interceptors.request.use((config) => {
    n++;
    return config;
  });
  return { instance, sent: () => n };
}

/**
 * The emulator of a release, with the seeded administrator and client.
 * @param version - the profile
 */
export async function emulatorTarget(version: '7.0' | '8.0' | '8.2'): Promise<ContractTarget> {
  const harness = await startHarness({ version, seed: { extraPatients: 5 } });
  const { instance, sent } = counted();
  let idToken: string | undefined;
  const client = createOpenEmrClient({
    baseUrl: harness.baseUrl,
    version,
    retry: false,
    axios: instance,
    auth: {
      kind: 'password',
      clientId: SEED_CLIENT.clientId,
      clientSecret: SEED_CLIENT.clientSecret,
      username: SEED_ADMIN.username,
      password: SEED_ADMIN.password,
      scope: cdssScopes(version === '7.0' ? 'v1' : 'v2'),
      onTokens: (t) => (idToken = t.idToken ?? idToken),
    },
  });
  return {
    name: `emulator ${version}`,
    client,
    baseUrl: harness.baseUrl,
    site: 'default',
    facilityId: '3',
    idToken: () => idToken,
    sent,
    harness,
    close: () => harness.close(),
  };
}

/** The live OpenEMR of the environment (its release detected first when not given, to pick the scope syntax). */
export async function liveTarget(): Promise<ContractTarget> {
  const env = (name: string): string => {
    const value = process.env[`CDSS_TEST_OPENEMR_${name}`];
    if (value === undefined || value === '') throw new Error(`CDSS_TEST_OPENEMR_${name} is required for a live run`);
    return value;
  };
  const baseUrl = env('URL');
  const site = process.env['CDSS_TEST_OPENEMR_SITE'] || undefined;
  const version =
    (process.env['CDSS_TEST_OPENEMR_VERSION'] as OpenEmrVersion | undefined) ||
    (await detectOpenEmrVersion(createOpenEmrClient({ baseUrl, site }).transport));
  const { instance, sent } = counted();
  let idToken: string | undefined;
  const client = createOpenEmrClient({
    baseUrl,
    site,
    version,
    axios: instance,
    documentCategory: process.env['CDSS_TEST_OPENEMR_DOCUMENT_CATEGORY'] || undefined,
    auth: {
      kind: 'password',
      clientId: env('CLIENT_ID'),
      clientSecret: process.env['CDSS_TEST_OPENEMR_CLIENT_SECRET'] || undefined,
      username: env('USERNAME'),
      password: env('PASSWORD'),
      scope: cdssScopes(version === '7.0' ? 'v1' : 'v2'),
      onTokens: (t) => (idToken = t.idToken ?? idToken),
    },
  });
  return {
    name: `live ${version} ${baseUrl}`,
    client,
    baseUrl,
    site: site ?? 'default',
    idToken: () => idToken,
    facilityId: process.env['CDSS_TEST_OPENEMR_FACILITY_ID'] || '3',
    sent,
    close: () => Promise.resolve(),
  };
}
