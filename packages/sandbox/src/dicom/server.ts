/**
 * The DICOM store emulator: the part of Orthanc's REST API and of DICOMweb (QIDO-RS, WADO-RS, STOW-RS) that
 * `@cdss/orthanc-client` uses, served over Part-10 files on disk. It shares no code or schema with the client
 * (it is held to the same contract suite as the real Orthanc instead).
 * @packageDocumentation
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unzipSync, zipSync } from 'fflate';
import { z } from 'zod';
import { getBytes, getString, getUint16, parseDicom } from '@cdss/dicom';
import { tagOf } from './dictionary.js';
import { toDicomJson, toSimplifiedTags, type JsonDataset } from './dicom-json.js';
import { DicomFileStore, StoreInputError, type Level, type StoredInstance, type StoredResource } from './store.js';

/** Options of {@link createDicomStoreEmulator}. */
export interface DicomStoreEmulatorOptions {
  /** Folder holding the DICOM files and the change log (created if missing; kept across restarts). */
  root: string;
  /** Port on 127.0.0.1; default 0 (any free port). */
  port?: number;
  /** Basic-auth credentials required on every request; default none. */
  credentials?: { username: string; password: string };
  /** Seconds after the last instance before Stable* changes fire (Orthanc's StableAge); default 2. */
  stableAgeSeconds?: number;
  /** Largest request body accepted, bytes; default 1 GiB. */
  maxBodyBytes?: number;
}

/** A running emulator. */
export interface DicomStoreEmulator {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no credentials). */
  url: string;
  /** The port it listens on. */
  port: number;
  /** The file store. */
  store: DicomFileStore;
  /** Stops listening (open connections are closed). */
  close(): Promise<void>;
}

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const LEVEL_OF_PATH: Record<string, Level> = {
  patients: 'Patient',
  studies: 'Study',
  series: 'Series',
  instances: 'Instance',
};
const PATH_OF_LEVEL: Record<Level, string> = {
  Patient: 'patients',
  Study: 'studies',
  Series: 'series',
  Instance: 'instances',
};
const findBodySchema = z.object({
  Level: z.enum(['Patient', 'Study', 'Series', 'Instance']),
  Query: z.record(z.string(), z.string()),
  Expand: z.boolean().optional(),
  Limit: z.number().int().min(0).optional(),
  Since: z.number().int().min(0).optional(),
  CaseSensitive: z.boolean().optional(),
});

function wildcard(pattern: string, caseSensitive: boolean): RegExp {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, caseSensitive ? '' : 'i');
}

function matches(value: string | undefined, pattern: string, caseSensitive = true): boolean {
  if (pattern === '' || pattern === '*') return true;
  const v = value ?? '';
  if (/^\d{8}-\d{8}$|^\d{8}-$|^-\d{8}$/.test(pattern)) {
    const [from, to] = pattern.split('-');
    return (!from || v >= from) && (!to || v <= to);
  }
  if (pattern.includes('\\')) return pattern.split('\\').some((p) => matches(v, p, caseSensitive));
  if (/[*?]/.test(pattern)) return wildcard(pattern, caseSensitive).test(v);
  return caseSensitive ? v === pattern : v.toLowerCase() === pattern.toLowerCase();
}

/**
 * Starts the emulator on 127.0.0.1.
 * @param options - folder, port, credentials, stable age
 * @returns the running emulator
 */
export async function createDicomStoreEmulator(options: DicomStoreEmulatorOptions): Promise<DicomStoreEmulator> {
  const store = new DicomFileStore({
    root: options.root,
    ...(options.stableAgeSeconds !== undefined ? { stableAgeSeconds: options.stableAgeSeconds } : {}),
  });
  const maxBody = options.maxBodyBytes ?? 1024 ** 3;
  const jobs = new Map<
    string,
    { id: string; state: 'Running' | 'Success' | 'Failure'; zip?: Uint8Array; error?: string; created: number }
  >();
  let baseUrl = '';

  const readBody = async (req: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > maxBody) throw new HttpFailure(413, 'request body too large');
      chunks.push(c);
    }
    return Buffer.concat(chunks, size);
  };
  const json = (res: ServerResponse, status: number, body: unknown, type = 'application/json'): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const binary = (res: ServerResponse, body: Uint8Array, type: string, extra: Record<string, string> = {}): void => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, ...extra });
    res.end(body);
  };

  /** A multipart/related answer of octet-stream parts (WADO-RS frames and bulk data). */
  const octetStreamParts = (res: ServerResponse, parts: Uint8Array[], typeParams = ''): void => {
    const boundary = randomBytes(16).toString('hex');
    const chunks: Uint8Array[] = [];
    for (const data of parts) {
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`,
        ),
        data,
        Buffer.from('\r\n'),
      );
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    binary(
      res,
      Buffer.concat(chunks),
      `multipart/related; type="application/octet-stream"${typeParams}; boundary=${boundary}`,
    );
  };

  const resourceJson = (level: Level, id: string): Record<string, unknown> => {
    if (level === 'Instance') {
      const i = store.instances.get(id);
      if (!i) throw new HttpFailure(404, 'Unknown resource');
      return {
        ID: i.id,
        Type: 'Instance',
        MainDicomTags: i.tags,
        ParentSeries: i.seriesId,
        FileSize: i.fileSize,
        FileUuid: i.id,
        IndexInSeries: i.indexInSeries,
      };
    }
    const r = store.resources.get(id);
    if (!r || r.level !== level) throw new HttpFailure(404, 'Unknown resource');
    const children = [...r.children];
    const common = {
      ID: r.id,
      Type: level,
      MainDicomTags: r.tags,
      IsStable: r.stable,
      LastUpdate: new Date(r.lastUpdate).toISOString().replace(/[-:]/g, '').slice(0, 15),
    };
    if (level === 'Patient') return { ...common, Studies: children };
    if (level === 'Study') {
      const patient = store.resources.get(r.parent ?? '');
      return { ...common, ParentPatient: r.parent, PatientMainDicomTags: patient?.tags ?? {}, Series: children };
    }
    return {
      ...common,
      ParentStudy: r.parent,
      Instances: children,
      ExpectedNumberOfInstances: null,
      Status: 'Unknown',
    };
  };

  const levelIds = (level: Level): string[] =>
    level === 'Instance'
      ? [...store.instances.keys()]
      : [...store.resources.values()].filter((r) => r.level === level).map((r) => r.id);

  /** Tags of a resource for matching: its own main tags plus its ancestors'. */
  const tagsFor = (level: Level, id: string): Record<string, string> => {
    const chain: Record<string, string>[] = [];
    let rid: string | undefined;
    if (level === 'Instance') {
      const i = store.instances.get(id);
      if (!i) return {};
      chain.push(i.tags);
      rid = i.seriesId;
    } else rid = id;
    while (rid) {
      const r: StoredResource | undefined = store.resources.get(rid);
      if (!r) break;
      chain.push(r.tags);
      rid = r.parent;
    }
    return Object.assign({}, ...chain.reverse()) as Record<string, string>;
  };

  const storeMany = (files: Uint8Array[]): Array<{ instance: StoredInstance; status: string }> => {
    // Validate everything first: a bad file in a batch stores nothing.
    for (const [n, f] of files.entries()) {
      try {
        store.inspect(f);
      } catch (error) {
        throw new HttpFailure(400, `file ${n}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return files.map((f) => store.store(f));
  };

  const uploadAnswer = (r: { instance: StoredInstance; status: string }): Record<string, string> => ({
    ID: r.instance.id,
    ParentPatient: r.instance.patientId,
    ParentStudy: r.instance.studyId,
    ParentSeries: r.instance.seriesId,
    Path: `/instances/${r.instance.id}`,
    Status: r.status,
  });

  const zipOf = async (id: string): Promise<Uint8Array> => {
    const entries: Record<string, Uint8Array> = {};
    for (const inst of store.instancesOf(id)) {
      const t = tagsFor('Instance', inst.id);
      const folder =
        `${t['PatientID'] ?? ''} ${t['PatientName'] ?? ''}/${t['StudyDescription'] ?? 'Study'}/${t['Modality'] ?? ''} ${t['SeriesDescription'] ?? ''}`.replace(
          /[^\w .^-]/g,
          '_',
        );
      entries[`${folder}/${inst.id}.dcm`] = await store.read(inst.id);
    }
    return zipSync(entries, { level: 0 });
  };

  // ---- DICOMweb helpers
  const retrieveUrl = (...parts: string[]): string => `${baseUrl}/dicom-web/${parts.join('/')}`;
  const instancesFor = (study?: string, series?: string, sop?: string): StoredInstance[] => {
    let list = [...store.instances.values()];
    if (study) list = list.filter((i) => i.uids.study === study);
    if (series) list = list.filter((i) => i.uids.series === series);
    if (sop) list = list.filter((i) => i.uids.sop === sop);
    return list;
  };

  const QIDO_RESERVED = new Set(['includefield', 'limit', 'offset', 'fuzzymatching']);
  const qido = async (
    level: 'Study' | 'Series' | 'Instance',
    params: URLSearchParams,
    scope: { study?: string; series?: string },
  ): Promise<JsonDataset[]> => {
    const filters: Array<[number, string]> = [];
    const include = new Set<number>();
    let includeAll = false;
    for (const [k, v] of params) {
      if (k === 'includefield') {
        for (const f of v.split(',')) {
          if (f === 'all') includeAll = true;
          else {
            const t = tagOf(f);
            if (t === undefined) throw new HttpFailure(400, `unknown includefield ${f}`);
            include.add(t);
          }
        }
        continue;
      }
      if (QIDO_RESERVED.has(k)) continue;
      const t = tagOf(k);
      if (t === undefined) throw new HttpFailure(400, `unknown QIDO attribute ${k}`);
      filters.push([t, v]);
    }
    const groups = new Map<string, StoredInstance[]>();
    for (const i of instancesFor(scope.study, scope.series)) {
      const key = level === 'Study' ? i.uids.study : level === 'Series' ? i.uids.series : i.uids.sop;
      const g = groups.get(key) ?? [];
      g.push(i);
      groups.set(key, g);
    }
    const results: JsonDataset[] = [];
    for (const [, members] of groups) {
      const first = members[0] as StoredInstance;
      const bytes = await store.read(first.id);
      const file = parseDicom(bytes);
      const full = toDicomJson(file, file.dataset);
      const value = (t: number): string => {
        const a = full[t.toString(16).toUpperCase().padStart(8, '0')];
        const v = a?.Value?.[0];
        if (v === undefined || v === null) return '';
        if (typeof v === 'object') return String((v as { Alphabetic?: string }).Alphabetic ?? '');
        return String(v);
      };
      if (!filters.every(([t, pattern]) => matches(value(t), pattern, t !== 0x00100010))) continue;
      const keep: number[] =
        level === 'Study'
          ? [
              0x00080020, 0x00080030, 0x00080050, 0x00080090, 0x00100010, 0x00100020, 0x00100030, 0x00100040,
              0x0020000d, 0x00200010, 0x00081030,
            ]
          : level === 'Series'
            ? [0x00080060, 0x0008103e, 0x0020000e, 0x00200011, 0x00080021, 0x00080031, 0x0020000d]
            : [0x00080016, 0x00080018, 0x00200013, 0x00280010, 0x00280011, 0x0020000d, 0x0020000e, 0x00280008];
      const out: JsonDataset = {};
      for (const [k, a] of Object.entries(full)) {
        const t = Number.parseInt(k, 16);
        if (
          keep.includes(t) ||
          include.has(t) ||
          filters.some(([f]) => f === t) ||
          (includeAll && !a.InlineBinary && !a.BulkDataURI)
        )
          out[k] = a;
      }
      if (level === 'Study') {
        const series = new Set(members.map((m) => m.uids.series));
        out['00201206'] = { vr: 'IS', Value: [series.size] };
        out['00201208'] = { vr: 'IS', Value: [members.length] };
        out['00080061'] = {
          vr: 'CS',
          Value: [...new Set(members.map((m) => tagsFor('Instance', m.id)['Modality'] ?? ''))],
        };
        out['00081190'] = { vr: 'UR', Value: [retrieveUrl('studies', first.uids.study)] };
      } else if (level === 'Series') {
        out['00201209'] = { vr: 'IS', Value: [members.length] };
        out['00081190'] = { vr: 'UR', Value: [retrieveUrl('studies', first.uids.study, 'series', first.uids.series)] };
      } else {
        out['00081190'] = {
          vr: 'UR',
          Value: [retrieveUrl('studies', first.uids.study, 'series', first.uids.series, 'instances', first.uids.sop)],
        };
      }
      results.push(Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b))));
    }
    const offset = Number(params.get('offset') ?? 0) || 0;
    const limit = params.has('limit') ? Number(params.get('limit')) : Infinity;
    return results.slice(offset, offset + limit);
  };

  const multipartDicom = async (res: ServerResponse, list: StoredInstance[]): Promise<void> => {
    if (list.length === 0) throw new HttpFailure(404, 'no such instances');
    const boundary = randomBytes(16).toString('hex');
    res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` });
    for (const inst of list) {
      const bytes = await store.read(inst.id);
      const head = `--${boundary}\r\nContent-Type: application/dicom\r\nContent-Length: ${bytes.length}\r\nContent-Location: ${retrieveUrl('studies', inst.uids.study, 'series', inst.uids.series, 'instances', inst.uids.sop)}\r\n\r\n`;
      if (!res.write(head)) await new Promise((r) => res.once('drain', r));
      if (!res.write(bytes)) await new Promise((r) => res.once('drain', r));
      res.write('\r\n');
    }
    res.end(`--${boundary}--\r\n`);
  };

  const frameBytes = (bytes: Uint8Array, frame: number): Uint8Array => {
    const file = parseDicom(bytes);
    const ds = file.dataset;
    const rows = getUint16(file, ds.get(0x00280010)) ?? 0;
    const cols = getUint16(file, ds.get(0x00280011)) ?? 0;
    const bits = getUint16(file, ds.get(0x00280100)) ?? 16;
    const spp = getUint16(file, ds.get(0x00280002)) ?? 1;
    const frames = Number(getString(file, ds.get(0x00280008)) ?? '1') || 1;
    const pixels = getBytes(file, ds.get(0x7fe00010));
    if (!pixels) throw new HttpFailure(404, 'instance has no pixel data');
    if (frame < 0 || frame >= frames) throw new HttpFailure(404, `no frame ${frame}`);
    if (bits === 1) {
      const bitsPerFrame = rows * cols * spp;
      if (bitsPerFrame % 8 !== 0) throw new HttpFailure(400, 'bit-packed frames not byte aligned');
      const size = bitsPerFrame / 8;
      return pixels.subarray(frame * size, (frame + 1) * size);
    }
    const size = rows * cols * spp * (bits / 8);
    return pixels.subarray(frame * size, (frame + 1) * size);
  };

  const splitMultipart = (body: Buffer, contentType: string): Buffer[] => {
    const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
    const boundary = m?.[1] ?? m?.[2];
    if (!boundary) throw new HttpFailure(400, 'multipart request without boundary');
    const delim = Buffer.from(`--${boundary}`);
    const parts: Buffer[] = [];
    let pos = body.indexOf(delim);
    if (pos < 0) throw new HttpFailure(400, 'multipart body without boundary');
    for (;;) {
      pos += delim.length;
      if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break;
      const headEnd = body.indexOf('\r\n\r\n', pos);
      if (headEnd < 0) throw new HttpFailure(400, 'multipart part without headers');
      const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4);
      if (next < 0) throw new HttpFailure(400, 'truncated multipart body');
      parts.push(body.subarray(headEnd + 4, next));
      pos = next + 2;
    }
    return parts;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (options.credentials) {
      const expected = Buffer.from(
        `Basic ${Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString('base64')}`,
      );
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="Orthanc"', 'content-length': 0 });
        res.end();
        return;
      }
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const q = url.searchParams;

    // ---------------- DICOMweb
    if (parts[0] === 'dicom-web') {
      const p = parts.slice(1);
      if (method === 'POST' && p[0] === 'studies' && p.length <= 2) {
        const body = await readBody(req);
        const files = splitMultipart(body, req.headers['content-type'] ?? '');
        const referenced: JsonDataset[] = [];
        const failed: JsonDataset[] = [];
        for (const f of files) {
          let uids: StoredInstance['uids'] | undefined;
          try {
            uids = store.inspect(f).uids;
            if (p[1] && uids.study !== p[1])
              throw new StoreInputError('instance does not belong to the study of the request');
            const r = store.store(f);
            referenced.push({
              '00081150': { vr: 'UI', Value: [r.instance.uids.sopClass] },
              '00081155': { vr: 'UI', Value: [r.instance.uids.sop] },
              '00081190': {
                vr: 'UR',
                Value: [
                  retrieveUrl(
                    'studies',
                    r.instance.uids.study,
                    'series',
                    r.instance.uids.series,
                    'instances',
                    r.instance.uids.sop,
                  ),
                ],
              },
            });
          } catch (error) {
            if (!(error instanceof StoreInputError)) throw error;
            failed.push({
              '00081150': { vr: 'UI', Value: [uids?.sopClass ?? ''] },
              '00081155': { vr: 'UI', Value: [uids?.sop ?? ''] },
              '00081197': { vr: 'US', Value: [uids ? 0xc000 : 0xc000] },
            });
          }
        }
        const answer: JsonDataset = {
          '00081198': failed.length ? { vr: 'SQ', Value: failed } : { vr: 'SQ' },
          '00081199': referenced.length ? { vr: 'SQ', Value: referenced } : { vr: 'SQ' },
        };
        if (p[1]) answer['00081190'] = { vr: 'UR', Value: [retrieveUrl('studies', p[1])] };
        json(res, failed.length === 0 ? 200 : referenced.length === 0 ? 409 : 202, answer, 'application/dicom+json');
        return;
      }
      if (method !== 'GET') throw new HttpFailure(405, 'method not allowed');
      // QIDO
      const path = p.join('/');
      let m: RegExpExecArray | null;
      if (path === 'studies') return json(res, 200, await qido('Study', q, {}), 'application/dicom+json');
      if (path === 'series') return json(res, 200, await qido('Series', q, {}), 'application/dicom+json');
      if (path === 'instances') return json(res, 200, await qido('Instance', q, {}), 'application/dicom+json');
      if ((m = /^studies\/([^/]+)\/series$/.exec(path)))
        return json(res, 200, await qido('Series', q, { study: m[1] as string }), 'application/dicom+json');
      if ((m = /^studies\/([^/]+)\/instances$/.exec(path)))
        return json(res, 200, await qido('Instance', q, { study: m[1] as string }), 'application/dicom+json');
      if ((m = /^studies\/([^/]+)\/series\/([^/]+)\/instances$/.exec(path)))
        return json(
          res,
          200,
          await qido('Instance', q, { study: m[1] as string, series: m[2] as string }),
          'application/dicom+json',
        );
      // WADO metadata
      if ((m = /^studies\/([^/]+)(?:\/series\/([^/]+))?(?:\/instances\/([^/]+))?\/metadata$/.exec(path))) {
        const list = instancesFor(m[1], m[2], m[3]);
        if (list.length === 0) throw new HttpFailure(404, 'no such resource');
        const out: JsonDataset[] = [];
        for (const inst of list) {
          const file = parseDicom(await store.read(inst.id));
          out.push(
            toDicomJson(
              file,
              file.dataset,
              retrieveUrl('studies', inst.uids.study, 'series', inst.uids.series, 'instances', inst.uids.sop),
            ),
          );
        }
        return json(res, 200, out, 'application/dicom+json');
      }
      // WADO frames
      if ((m = /^studies\/([^/]+)\/series\/([^/]+)\/instances\/([^/]+)\/frames\/([\d,]+)$/.exec(path))) {
        const inst = instancesFor(m[1], m[2], m[3])[0];
        if (!inst) throw new HttpFailure(404, 'no such instance');
        const bytes = await store.read(inst.id);
        const frames = (m[4] as string).split(',').map(Number);
        return octetStreamParts(
          res,
          frames.map((f) => frameBytes(bytes, f - 1)),
          '; transfer-syntax=1.2.840.10008.1.2.1',
        );
      }
      // WADO bulk data (BulkDataURI of metadata): the pixel data of single-frame instances
      if ((m = /^studies\/([^/]+)\/series\/([^/]+)\/instances\/([^/]+)\/bulk\/7FE00010$/.exec(path))) {
        const inst = instancesFor(m[1], m[2], m[3])[0];
        if (!inst) throw new HttpFailure(404, 'no such instance');
        const file = parseDicom(await store.read(inst.id));
        return octetStreamParts(res, [getBytes(file, file.dataset.get(0x7fe00010)) ?? new Uint8Array()]);
      }
      // WADO retrieve
      if ((m = /^studies\/([^/]+)(?:\/series\/([^/]+))?(?:\/instances\/([^/]+))?$/.exec(path))) {
        return multipartDicom(res, instancesFor(m[1], m[2], m[3]));
      }
      throw new HttpFailure(404, 'unknown DICOMweb route');
    }

    // ---------------- Orthanc REST
    const path = parts.join('/');
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === 'system') {
      return json(res, 200, {
        Name: 'cdss-dicom-store-emulator',
        Version: '1.10.1',
        ApiVersion: 16,
        DatabaseVersion: 6,
        DicomAet: 'ORTHANC',
        DicomPort: 0,
        HttpPort: Number(new URL(baseUrl).port),
        PluginsEnabled: true,
      });
    }
    if (method === 'GET' && path === 'plugins') return json(res, 200, ['dicom-web']);
    if (method === 'GET' && path === 'statistics') {
      const size = [...store.instances.values()].reduce((s, i) => s + i.fileSize, 0);
      return json(res, 200, {
        CountPatients: levelIds('Patient').length,
        CountStudies: levelIds('Study').length,
        CountSeries: levelIds('Series').length,
        CountInstances: store.instances.size,
        TotalDiskSize: String(size),
        TotalDiskSizeMB: Math.round(size / 1048576),
      });
    }
    if (method === 'GET' && (m = /^(patients|studies|series|instances)$/.exec(path))) {
      const ids = levelIds(LEVEL_OF_PATH[m[1] as string] as Level);
      const since = Number(q.get('since') ?? 0) || 0;
      const limit = q.has('limit') ? Number(q.get('limit')) : Infinity;
      const page = ids.slice(since, since + limit);
      return json(
        res,
        200,
        q.has('expand') ? page.map((id) => resourceJson(LEVEL_OF_PATH[m![1] as string] as Level, id)) : page,
      );
    }
    if ((m = /^(patients|studies|series|instances)\/([^/]+)$/.exec(path))) {
      const level = LEVEL_OF_PATH[m[1] as string] as Level;
      if (method === 'GET') return json(res, 200, resourceJson(level, m[2] as string));
      if (method === 'DELETE') {
        resourceJson(level, m[2] as string); // 404 when unknown
        store.delete(m[2] as string);
        return json(res, 200, {});
      }
    }
    if (method === 'GET' && (m = /^studies\/([^/]+)\/series$/.exec(path))) {
      const r = resourceJson('Study', m[1] as string) as { Series: string[] };
      return json(
        res,
        200,
        r.Series.map((id) => resourceJson('Series', id)),
      );
    }
    if (method === 'GET' && (m = /^series\/([^/]+)\/instances$/.exec(path))) {
      const r = resourceJson('Series', m[1] as string) as { Instances: string[] };
      return json(
        res,
        200,
        r.Instances.map((id) => resourceJson('Instance', id)),
      );
    }
    if (method === 'GET' && (m = /^series\/([^/]+)\/ordered-slices$/.exec(path))) {
      resourceJson('Series', m[1] as string);
      const list = store.instancesOf(m[1] as string).map((inst) => {
        const ipp = (inst.tags['ImagePositionPatient'] ?? '').split('\\').map(Number);
        const iop = (inst.tags['ImageOrientationPatient'] ?? '1\\0\\0\\0\\1\\0').split('\\').map(Number);
        const n = [
          iop[1]! * iop[5]! - iop[2]! * iop[4]!,
          iop[2]! * iop[3]! - iop[0]! * iop[5]!,
          iop[0]! * iop[4]! - iop[1]! * iop[3]!,
        ];
        const d =
          ipp.length === 3
            ? ipp[0]! * n[0]! + ipp[1]! * n[1]! + ipp[2]! * n[2]!
            : Number(inst.tags['InstanceNumber'] ?? 0);
        return { inst, d };
      });
      list.sort((a, b) => a.d - b.d);
      return json(res, 200, {
        Type: 'Volume',
        Dicom: list.map(({ inst }) => `/instances/${inst.id}/file`),
        Slices: list.map(({ inst }) => `/instances/${inst.id}/frames/0`),
        SlicesShort: list.map(({ inst }) => [inst.id, 0, 1]),
      });
    }
    if (method === 'GET' && (m = /^instances\/([^/]+)\/(simplified-tags|tags)$/.exec(path))) {
      resourceJson('Instance', m[1] as string);
      const file = parseDicom(await store.read(m[1] as string));
      return json(res, 200, toSimplifiedTags(file, file.dataset));
    }
    if (method === 'GET' && (m = /^instances\/([^/]+)\/file$/.exec(path))) {
      resourceJson('Instance', m[1] as string);
      return binary(res, await store.read(m[1] as string), 'application/dicom');
    }
    if (method === 'GET' && (m = /^instances\/([^/]+)\/frames\/(\d+)\/raw$/.exec(path))) {
      resourceJson('Instance', m[1] as string);
      return binary(res, frameBytes(await store.read(m[1] as string), Number(m[2])), 'application/octet-stream');
    }
    if (method === 'POST' && path === 'instances') {
      const body = await readBody(req);
      const type = (req.headers['content-type'] ?? '').toLowerCase();
      const isZip =
        type.includes('zip') || (body[0] === 0x50 && body[1] === 0x4b && body[2] === 0x03 && body[3] === 0x04);
      if (isZip) {
        let entries: Record<string, Uint8Array>;
        try {
          entries = unzipSync(body);
        } catch (error) {
          throw new HttpFailure(
            400,
            `not a readable ZIP archive: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        const files = Object.entries(entries)
          .filter(([name, data]) => !name.endsWith('/') && data.length > 0)
          .map(([, data]) => data);
        return json(res, 200, storeMany(files).map(uploadAnswer));
      }
      const [r] = storeMany([body]);
      return json(res, 200, uploadAnswer(r as { instance: StoredInstance; status: string }));
    }
    if (method === 'POST' && path === 'tools/find') {
      let parsed: z.infer<typeof findBodySchema>;
      try {
        parsed = findBodySchema.parse(JSON.parse((await readBody(req)).toString('utf8')));
      } catch (error) {
        throw new HttpFailure(
          400,
          `bad /tools/find request: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      const hits = levelIds(parsed.Level).filter((id) => {
        const tags = tagsFor(parsed.Level, id);
        return Object.entries(parsed.Query).every(([k, pattern]) =>
          matches(tags[k], pattern, k === 'PatientName' ? (parsed.CaseSensitive ?? false) : true),
        );
      });
      const page = hits.slice(parsed.Since ?? 0, parsed.Limit ? (parsed.Since ?? 0) + parsed.Limit : undefined);
      return json(res, 200, parsed.Expand ? page.map((id) => resourceJson(parsed.Level, id)) : page);
    }
    if (method === 'POST' && path === 'tools/lookup') {
      const uid = (await readBody(req)).toString('utf8').trim();
      return json(
        res,
        200,
        store.lookup(uid).map((e) => ({ ID: e.id, Path: `/${PATH_OF_LEVEL[e.level]}/${e.id}`, Type: e.level })),
      );
    }
    if (method === 'GET' && path === 'changes') {
      const all = store.changes;
      const lastSeq = all.length ? (all[all.length - 1] as { Seq: number }).Seq : 0;
      if (q.has('last'))
        return json(res, 200, { Changes: all.length ? [all[all.length - 1]] : [], Done: true, Last: lastSeq });
      const since = Number(q.get('since') ?? 0) || 0;
      const limit = Math.min(Number(q.get('limit') ?? 100) || 100, 4000);
      const after = all.filter((c) => c.Seq > since);
      const page = after.slice(0, limit);
      return json(res, 200, {
        Changes: page,
        Done: after.length <= limit,
        Last: page.length ? (page[page.length - 1] as { Seq: number }).Seq : lastSeq,
      });
    }
    if ((m = /^(patients|studies|series)\/([^/]+)\/archive$/.exec(path))) {
      const level = LEVEL_OF_PATH[m[1] as string] as Level;
      const id = m[2] as string;
      resourceJson(level, id);
      if (method === 'GET')
        return binary(res, await zipOf(id), 'application/zip', {
          'content-disposition': `attachment; filename="${id}.zip"`,
        });
      if (method === 'POST') {
        const body = (await readBody(req)).toString('utf8');
        let asynchronous: boolean;
        try {
          asynchronous = body.trim() !== '' && (JSON.parse(body) as { Asynchronous?: boolean }).Asynchronous === true;
        } catch {
          throw new HttpFailure(400, 'bad JSON body');
        }
        if (!asynchronous) return binary(res, await zipOf(id), 'application/zip');
        const jobId = randomBytes(16)
          .toString('hex')
          .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
        const job: {
          id: string;
          state: 'Running' | 'Success' | 'Failure';
          zip?: Uint8Array;
          error?: string;
          created: number;
        } = { id: jobId, state: 'Running', created: Date.now() };
        jobs.set(jobId, job);
        setImmediate(() => {
          zipOf(id).then(
            (zip) => {
              job.zip = zip;
              job.state = 'Success';
            },
            (error: unknown) => {
              job.state = 'Failure';
              job.error = error instanceof Error ? error.message : String(error);
            },
          );
        });
        return json(res, 200, { ID: jobId, Path: `/jobs/${jobId}` });
      }
    }
    if (method === 'GET' && (m = /^jobs\/([^/]+)(\/archive)?$/.exec(path))) {
      const job = jobs.get(m[1] as string);
      if (!job) throw new HttpFailure(404, 'Unknown job');
      if (m[2]) {
        if (job.state !== 'Success' || !job.zip) throw new HttpFailure(404, 'job output not available');
        return binary(res, job.zip, 'application/zip');
      }
      return json(res, 200, {
        ID: job.id,
        State: job.state,
        Progress: job.state === 'Running' ? 50 : 100,
        Type: 'Archive',
        ErrorCode: job.state === 'Failure' ? 1 : 0,
        ErrorDescription: job.error ?? 'Success',
        Content: {},
        CreationTime: new Date(job.created).toISOString(),
      });
    }
    throw new HttpFailure(404, `unknown route ${method} /${path}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const status = error instanceof HttpFailure ? error.status : error instanceof StoreInputError ? 400 : 500;
      const message = error instanceof Error ? error.message : String(error);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      json(res, status, {
        HttpError: status === 404 ? 'Not Found' : status === 400 ? 'Bad Request' : 'Error',
        HttpStatus: status,
        Message: message,
        Method: req.method,
        Uri: req.url?.split('?')[0],
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${port}`;
  return {
    url: baseUrl,
    port,
    store,
    close: () =>
      new Promise<void>((resolve) => {
        store.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
