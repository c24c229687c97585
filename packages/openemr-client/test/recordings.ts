/**
 * The recorded real exchanges with OpenEMR 8.0.0 and 7.0.1 (`../shared/reference/openemr/recorded-*`),
 * read as data. They are the ground truth the replay suite holds the client to. Test-only.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding `recorded-8.0.0/` and `recorded-7.0.1/` (the workspace's `../shared`, as in CI). */
export const RECORDINGS_ROOT = fileURLToPath(new URL('../../../../shared/reference/openemr/', import.meta.url));

/** The recorded releases, by folder. */
export const RECORDED_VERSIONS = ['8.0.0', '7.0.1'] as const;
/** A recorded release. */
export type RecordedVersion = (typeof RECORDED_VERSIONS)[number];

/** One recorded exchange, as stored. */
export interface RecordedExchange {
  /** `8.0.0/11`: the release and the file's number. */
  id: string;
  version: RecordedVersion;
  /** File name, e.g. `11-patients-create-nonascii.json`. */
  file: string;
  operation: string;
  note: string;
  method: string;
  path: string;
  query: Record<string, string>;
  requestHeaders: Record<string, string>;
  /** JSON, `{__form: {...}}`, `{__multipart: [...]}`, `{__text}` or null. */
  requestBody: unknown;
  status: number;
  responseHeaders: Record<string, string>;
  /** JSON, `{__text}` for non-JSON bodies, or null for an empty body. */
  responseBody: unknown;
}

/** Whether the recordings are present (CI has them; a laptop without `../shared` skips). */
export function recordingsAvailable(): boolean {
  return RECORDED_VERSIONS.every((v) => existsSync(join(RECORDINGS_ROOT, `recorded-${v}`)));
}

/** Whether the folder of recordings exists at all (a laptop without `../shared` has none). */
export function recordingsRootPresent(): boolean {
  return existsSync(RECORDINGS_ROOT);
}

/** The release of every `recorded-<release>` folder present, known or not (sorted). */
export function recordedFolders(): string[] {
  return readdirSync(RECORDINGS_ROOT, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.startsWith('recorded-'))
    .map((e) => e.name.slice('recorded-'.length))
    .sort();
}

/**
 * Every entry of a release folder, as named on disk (README included).
 * @param release - the folder's release, e.g. `8.0.0`
 */
export function recordedFiles(release: string): string[] {
  return readdirSync(join(RECORDINGS_ROOT, `recorded-${release}`)).sort();
}

/** The file names {@link recordings} reads as exchanges. */
export const EXCHANGE_FILE = /^\d+-.*\.json$/;

const cache = new Map<RecordedVersion, RecordedExchange[]>();

/**
 * Every exchange of a release, in recording order.
 * @param version - the release
 */
export function recordings(version: RecordedVersion): RecordedExchange[] {
  let list = cache.get(version);
  if (!list) {
    const dir = join(RECORDINGS_ROOT, `recorded-${version}`);
    list = readdirSync(dir)
      .filter((f) => EXCHANGE_FILE.test(f))
      .map((file) => {
        const raw = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Omit<
          RecordedExchange,
          'id' | 'version' | 'file'
        >;
        return { ...raw, query: raw.query ?? {}, id: `${version}/${Number.parseInt(file, 10)}`, version, file };
      })
      .sort((a, b) => Number.parseInt(a.file, 10) - Number.parseInt(b.file, 10));
    cache.set(version, list);
  }
  return list;
}

/**
 * One exchange by id.
 * @param id - `8.0.0/11`
 * @throws Error when there is no such file
 */
export function recording(id: string): RecordedExchange {
  const [version, n] = id.split('/') as [RecordedVersion, string];
  const found = recordings(version).find((r) => r.id === `${version}/${Number(n)}`);
  if (!found) throw new Error(`no recording ${id}`);
  return found;
}

/** The server root the client used for an exchange (the recorded `host`; URLs in bodies name it). */
export function recordedBaseUrl(exchange: RecordedExchange): string {
  return `http://${exchange.responseHeaders['host'] ?? '127.0.0.1'}`;
}

/** True when a recorded value was redacted (secrets, tokens, CSRF tokens). */
export function isRedacted(value: unknown): boolean {
  return typeof value === 'string' && value.includes('<redacted');
}

/** The recorded response body as the bytes to send back: JSON as JSON, `{__text}` as text, null as nothing. */
export function responseText(exchange: RecordedExchange): string | undefined {
  const body = exchange.responseBody;
  if (body === null || body === undefined) return undefined;
  if (typeof body === 'object' && !Array.isArray(body) && '__text' in body)
    return String((body as { __text: unknown }).__text);
  return JSON.stringify(body);
}
