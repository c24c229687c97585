/**
 * The `/dicomweb` proxy, one contract run against the embedded DICOM store and one against the real Orthanc
 * (scripts/services; skipped with a message when it is not running, failing under CI): QIDO-RS filters, WADO-RS
 * metadata, frames and instances through the proxy, URLs rewritten to the proxy, 401/403, and the audit record.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, createServer, get as httpGet, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, listenOnFreePort, requireService } from '@cdss/core/testing';
import { generatePhantom, getBytes, getString, parseDicom, writePhantomStudy, type WrittenStudy } from '@cdss/dicom';
import { multipartBoundary, OrthancClient, parseMultipart, type MultipartPart } from '@cdss/orthanc-client';
import { createDicomStoreEmulator, type DicomStoreEmulator } from '@cdss/sandbox';
import { dicomWebProxyRoutes, replaceInStream, WINDOW_BYTES } from './dicomweb-proxy.js';
import { startHarness, type Harness } from '../test-support.js';
import { createLogger } from '../logger.js';

const orthanc = await requireService('orthanc');
const NO_ROLE_TOKEN = 'token-of-a-user-without-study-read';

describe('replaceInStream', () => {
  async function run(chunks: string[], from: string, to: string): Promise<string> {
    let out = '';
    for await (const chunk of Readable.from(chunks.map((c) => Buffer.from(c))).pipe(replaceInStream(from, to)))
      out += (chunk as Buffer).toString();
    return out;
  }
  it('replaces across chunk boundaries, adjacent matches and partial matches at the end', async () => {
    expect(await run(['http://a/dic', 'om-web/x"', ',"http://a/dicom-web/y'], 'http://a/dicom-web', 'B')).toBe(
      'B/x","B/y',
    );
    expect(await run(['abab', 'ab'], 'ab', 'c')).toBe('ccc');
    expect(await run(['xxhttp://a/di'], 'http://a/dicom-web', 'B')).toBe('xxhttp://a/di');
    expect(await run([''], 'ab', 'c')).toBe('');
  });
});

describe('an answer held until its audit record is durable', () => {
  const BIG = 6 * WINDOW_BYTES + 12_345;
  const bodies = new Map<number, Buffer>();
  const body = (bytes: number): Buffer => {
    let data = bodies.get(bytes);
    if (!data) {
      data = Buffer.allocUnsafe(bytes);
      for (let i = 0; i < bytes; i++) data[i] = (i * 7) % 251;
      bodies.set(bytes, data);
    }
    return data;
  };
  let pacs: Server;
  let pacsUrl: string;
  /** Bytes the fake PACS's socket has taken per request path (written to the kernel, not necessarily read). */
  const flushed = new Map<string, number>();
  /** Request paths whose connection has closed. */
  const closed = new Set<string>();
  let h: Harness;
  /** The next audit record waits for this (its request's answer with it). */
  let gate: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    body(BIG);
    pacs = createServer(async (req, res) => {
      if (req.url?.startsWith('/dicom-web/studies?')) return void res.end('[]');
      if (req.url?.endsWith('/404')) return void res.writeHead(404).end();
      if (req.url?.includes('/series/1.2.3.6')) {
        // Answers only once the proxy's record of this request is durable (within 5 s): a proxy that commits the
        // record after the PACS has answered never gets this answer.
        const resource = `ImagingStudy${req.url.slice('/dicom-web/studies'.length)}`;
        for (let waited = 0; waited < 5_000; waited += 20) {
          if (h.audit.records.some((r) => r.resource === resource)) return void res.end('committed first');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return void res.writeHead(503).end();
      }
      // The series a client hangs up on is twice as long: more than every buffer on the way holds (14–18 MB here).
      const size = req.url?.includes('/instances/') ? 1_000 : req.url?.endsWith('/1.2.3.5') ? 2 * BIG : BIG;
      const data = body(size);
      res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"', 'content-length': size });
      flushed.set(req.url ?? '', 0);
      req.socket.once('close', () => closed.add(req.url ?? ''));
      // In 64 KiB writes, counting what the socket has taken.
      const write = (at: number): void => {
        if (at >= size) return void res.end();
        const chunk = data.subarray(at, at + 65_536);
        const more = res.write(chunk, () => flushed.set(req.url ?? '', at + chunk.length));
        if (more) setImmediate(write, at + chunk.length);
        else res.once('drain', () => write(at + chunk.length));
      };
      write(0);
    });
    await listenOnFreePort(pacs);
    pacsUrl = `http://127.0.0.1:${(pacs.address() as AddressInfo).port}/dicom-web`;
    h = await startHarness(({ auditor }) =>
      dicomWebProxyRoutes({
        upstream: { url: pacsUrl },
        auditor: { ...auditor, record: (context, outcome) => gate.then(() => auditor.record(context, outcome)) },
        logger: createLogger('silent'),
      }),
    );
  });
  afterAll(async () => {
    await h?.close();
    await new Promise((resolve) => pacs?.close(resolve));
  });

  /** Starts a GET and counts the bytes that reach the client. */
  async function start(path: string) {
    const token = await h.token('demo-physician');
    const state = {
      status: 0,
      bytes: [] as Buffer[],
      received: 0,
      done: undefined as unknown as Promise<void>,
      /** Hangs up mid-answer. */
      hangUp: (): void => undefined,
      /** Stops reading the answer (the client's socket then fills, and the proxy and the PACS wait). */
      stopReading: (): void => undefined,
    };
    state.done = new Promise((resolve, reject) => {
      const req = httpGet(`${h.baseUrl}/dicomweb${path}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        state.status = res.statusCode ?? 0;
        res.on('data', (chunk: Buffer) => {
          state.bytes.push(chunk);
          state.received += chunk.length;
        });
        res.once('end', resolve);
        res.once('error', reject);
      });
      req.once('error', reject);
      state.hangUp = () => req.destroy();
      req.once('response', (res) => (state.stopReading = () => res.pause()));
    });
    return state;
  }

  it('sends no byte while the record is not durable, reads at most a window ahead, then streams all of it', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const path = '/studies/1.2.3/series/1.2.3.4';
    const answer = await start(path);
    // The PACS goes on sending: past what the kernel's socket buffers take (about 4 MiB here) into the window.
    await expect.poll(() => flushed.get(`/dicom-web${path}`) ?? 0, { timeout: 10_000 }).toBeGreaterThan(WINDOW_BYTES);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answer.status).toBe(0);
    expect(answer.received).toBe(0);
    // ... but not further: the rest waits with the PACS.
    expect(flushed.get(`/dicom-web${path}`)).toBeLessThan(BIG);
    open();
    await answer.done;
    expect(answer.status).toBe(200);
    expect(Buffer.concat(answer.bytes).equals(body(BIG))).toBe(true);
    expect(h.audit.records.at(-1)).toMatchObject({ outcome: 'success', resource: 'ImagingStudy/1.2.3/series/1.2.3.4' });
  });

  it('lets the PACS go when the client hangs up mid-answer, and serves the next answer whole', async () => {
    gate = Promise.resolve();
    const path = '/studies/1.2.3/series/1.2.3.5';
    const answer = await start(path);
    answer.done.catch(() => undefined);
    await expect.poll(() => answer.received, { timeout: 10_000 }).toBeGreaterThan(0);
    // A client that stops reading, then hangs up: until then the whole path waits on it, short of the PACS's end
    // (read quickly, the whole answer could be through before the hang-up reached the proxy).
    answer.stopReading();
    let before = -1;
    await expect
      .poll(
        () => {
          const [now, last] = [flushed.get(`/dicom-web${path}`) ?? 0, before];
          before = now;
          return now === last;
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe(true);
    expect(before).toBeLessThan(2 * BIG);
    answer.hangUp();
    await expect.poll(() => closed.has(`/dicom-web${path}`), { timeout: 10_000 }).toBe(true);
    expect(flushed.get(`/dicom-web${path}`)).toBeLessThan(2 * BIG);
    const next = await start('/studies/1.2.3/series/1.2.3.4');
    await next.done;
    expect(Buffer.concat(next.bytes).equals(body(BIG))).toBe(true);
  });

  it('answers a HEAD with the PACS’s headers and lets the PACS go without reading its body', async () => {
    gate = Promise.resolve();
    const path = '/studies/1.2.3/series/1.2.3.7';
    const token = await h.token('demo-physician');
    const answer = await fetch(`${h.baseUrl}/dicomweb${path}`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-length')).toBe(String(BIG));
    await expect.poll(() => closed.has(`/dicom-web${path}`), { timeout: 10_000 }).toBe(true);
    expect(flushed.get(`/dicom-web${path}`)).toBeLessThan(BIG);
    expect(h.audit.records.at(-1)).toMatchObject({ outcome: 'success', resource: `ImagingStudy${path.slice(8)}` });
  });

  it('completes an answer the PACS finished before the record was durable', async () => {
    gate = new Promise((resolve) => setTimeout(resolve, 200));
    const answer = await start('/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5');
    await answer.done;
    expect(answer.status).toBe(200);
    expect(Buffer.concat(answer.bytes).equals(body(1_000))).toBe(true);
  });

  it('commits the record while the PACS is asked, not after it answers', async () => {
    gate = Promise.resolve();
    const answer = await start('/studies/1.2.3/series/1.2.3.6');
    await answer.done;
    expect(answer.status).toBe(200);
    expect(Buffer.concat(answer.bytes).toString()).toBe('committed first');
    const records = h.audit.records.filter((r) => r.resource === 'ImagingStudy/1.2.3/series/1.2.3.6');
    expect(records.map((r) => r.outcome)).toEqual(['success']);
  });

  it('follows the record with a failure record of the same request when the PACS then fails', async () => {
    gate = Promise.resolve();
    const answer = await start('/studies/1.2.3/series/404');
    await answer.done;
    expect(answer.status).toBe(404);
    const records = h.audit.records.filter((r) => r.resource === 'ImagingStudy/1.2.3/series/404');
    expect(records.map((r) => r.outcome)).toEqual(['success', 'failure']);
    expect(records[0]!.requestId).toBe(records[1]!.requestId);
  });

  it('answers an error, nothing of the body, and lets the PACS go when the audit fails', async () => {
    // Fails once the PACS is sending (and the proxy holding what it sent).
    gate = new Promise((_resolve, reject) => setTimeout(() => reject(new Error('audit store down')), 300));
    gate.catch(() => undefined);
    const answer = await start('/studies/1.2.3/series/1.2.3.5');
    await answer.done;
    expect(answer.status).toBeGreaterThanOrEqual(500);
    expect(Buffer.concat(answer.bytes).toString()).toContain('OperationOutcome');
    expect(answer.received).toBeLessThan(10_000);
    await expect.poll(() => closed.has('/dicom-web/studies/1.2.3/series/1.2.3.5'), { timeout: 5_000 }).toBe(true);
  });
});

interface Upstream {
  name: string;
  start(): Promise<{ url: string; client: OrthancClient; stop(): Promise<void> }>;
}

function proxyContract(upstream: Upstream): void {
  describe(`through the proxy to ${upstream.name}`, () => {
    let h: Harness;
    let pacs: Awaited<ReturnType<Upstream['start']>>;
    let study: WrittenStudy;
    const patientId = `DWP-${process.pid}-${Date.now().toString(36)}`;
    const sopOf = (file: Uint8Array): string => {
      const parsed = parseDicom(file);
      return getString(parsed, parsed.dataset.get(0x00080018)) ?? '';
    };

    async function get(path: string, options: { user?: string; token?: string; accept?: string } = {}) {
      const headers: Record<string, string> = {};
      const token = options.token ?? (options.user ? await h.token(options.user) : undefined);
      if (token) headers['authorization'] = `Bearer ${token}`;
      if (options.accept) headers['accept'] = options.accept;
      const response = await fetch(`${h.baseUrl}/dicomweb${path}`, { headers });
      return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
    }
    async function parts(body: Buffer, contentType: string): Promise<MultipartPart[]> {
      const found: MultipartPart[] = [];
      for await (const part of parseMultipart(Readable.from([body]), multipartBoundary(contentType))) found.push(part);
      return found;
    }
    const json = (body: Buffer): Array<Record<string, { Value?: unknown[]; BulkDataURI?: string }>> =>
      JSON.parse(body.toString('utf8')) as Array<Record<string, { Value?: unknown[]; BulkDataURI?: string }>>;

    beforeAll(async () => {
      pacs = await upstream.start();
      study = writePhantomStudy(generatePhantom({ seed: patientId, dims: [16, 16, 6] }), {
        patientId,
        patientName: 'Proxy^Test',
        studyDescription: 'Proxy contract',
      });
      await pacs.client.uploadInstances(Object.values(study.series).flatMap((s) => s.files));
      h = await startHarness(
        ({ auditor }) =>
          dicomWebProxyRoutes({ upstream: { url: `${pacs.url}/dicom-web` }, auditor, logger: createLogger('silent') }),
        {},
        undefined,
        undefined,
        // A signed-in user whose role grants nothing (an identity provider's role unknown to the policy).
        (verifier) => ({
          verify: async (token) =>
            token === NO_ROLE_TOKEN ? { id: 'u-no-role', name: 'No Role', roles: [] } : verifier.verify(token),
        }),
      );
    }, 60_000);
    afterAll(async () => {
      await h?.close();
      // The real Orthanc is shared: remove what this run stored.
      const uploaded = await pacs?.client.find({ level: 'Patient', query: { PatientID: patientId } }).catch(() => []);
      for (const p of uploaded ?? []) await pacs.client.delete('Patient', p.ID).catch(() => undefined);
      await pacs?.stop();
    });

    it('QIDO-RS: studies by PatientID, series by Modality, instances of a series; URLs point at the proxy', async () => {
      const studies = await get(`/studies?PatientID=${patientId}`, { user: 'demo-physician' });
      expect(studies.status).toBe(200);
      expect(studies.headers.get('content-type')).toMatch(/application\/dicom\+json/);
      const [found, ...more] = json(studies.body);
      expect(more).toHaveLength(0);
      expect(found?.['0020000D']?.Value?.[0]).toBe(study.studyInstanceUid);
      expect(found?.['00081190']?.Value?.[0]).toBe(`${h.baseUrl}/dicomweb/studies/${study.studyInstanceUid}`);
      expect(studies.body.toString()).not.toContain(pacs.url.replace(/\/\/[^@]*@/, '//'));

      const none = await get(`/studies?PatientID=${patientId}-nobody`, { user: 'demo-physician' });
      expect(none.status === 204 || json(none.body).length === 0).toBe(true);

      const series = await get(`/studies/${study.studyInstanceUid}/series?SeriesDescription=*FLAIR`, {
        user: 'demo-physician',
      });
      expect(json(series.body).map((s) => s['0020000E']?.Value?.[0])).toEqual([study.series.flair.seriesInstanceUid]);

      const instances = await get(
        `/studies/${study.studyInstanceUid}/series/${study.series.t1.seriesInstanceUid}/instances?limit=4`,
        { user: 'demo-physician' },
      );
      expect(json(instances.body)).toHaveLength(4);
    });

    it('QIDO-RS: refuses unknown parameters before asking the PACS', async () => {
      const bad = await get(`/studies?PatientID=x&drop%20table=1`, { user: 'demo-physician' });
      expect(bad.status).toBe(400);
      expect(bad.body.toString()).toContain('OperationOutcome');
      expect((await get(`/studies?limit=-1`, { user: 'demo-physician' })).status).toBe(400);
      expect((await get(`/studies/not-a-uid/series`, { user: 'demo-physician' })).status).toBe(400);
    });

    it('WADO-RS: series metadata, one dataset per instance, bulk data URIs through the proxy', async () => {
      const series = study.series.t1;
      const metadata = await get(`/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}/metadata`, {
        user: 'demo-radiologist',
      });
      expect(metadata.status).toBe(200);
      const datasets = json(metadata.body);
      expect(datasets).toHaveLength(series.files.length);
      expect(new Set(datasets.map((d) => d['00080018']?.Value?.[0]))).toEqual(new Set(series.files.map(sopOf)));
      const bulk = datasets[0]?.['7FE00010']?.BulkDataURI;
      if (bulk) expect(bulk.startsWith(`${h.baseUrl}/dicomweb/studies/`)).toBe(true);
    });

    it('WADO-RS: a frame through the proxy is the instance’s pixel data, byte for byte', async () => {
      const series = study.series.flair;
      const file = series.files[2]!;
      const parsed = parseDicom(file);
      const pixels = getBytes(parsed, parsed.dataset.get(0x7fe00010))!;
      const frame = await get(
        `/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}/instances/${sopOf(file)}/frames/1`,
        { user: 'demo-physician', accept: 'multipart/related; type="application/octet-stream"' },
      );
      expect(frame.status).toBe(200);
      const contentType = frame.headers.get('content-type') ?? '';
      expect(contentType).toMatch(/^multipart\/related/);
      const frames = await parts(frame.body, contentType);
      expect(frames).toHaveLength(1);
      expect(frames[0]!.body.equals(Buffer.from(pixels))).toBe(true);
    });

    it('WADO-RS: an instance comes back as its Part-10 file', async () => {
      const series = study.series.t2;
      const file = series.files[0]!;
      const answer = await get(
        `/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}/instances/${sopOf(file)}`,
        { user: 'demo-physician', accept: 'multipart/related; type="application/dicom"' },
      );
      expect(answer.status).toBe(200);
      const [part] = await parts(answer.body, answer.headers.get('content-type') ?? '');
      expect(Buffer.from(part!.body.subarray(128, 132)).toString('latin1')).toBe('DICM');
      expect(sopOf(part!.body)).toBe(sopOf(file));
    });

    it('WADO-RS: a series through the proxy is the PACS’s own answer: same parts, order, types and bytes', async () => {
      const series = study.series.flair;
      const path = `/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}`;
      const accept = 'multipart/related; type="application/dicom"';
      const proxied = await get(path, { user: 'demo-physician', accept });
      const pacsUrl = new URL(`${pacs.url}/dicom-web${path}`);
      const credentials = `${decodeURIComponent(pacsUrl.username)}:${decodeURIComponent(pacsUrl.password)}`;
      pacsUrl.username = pacsUrl.password = '';
      const direct = await fetch(pacsUrl, {
        headers: {
          accept,
          ...(credentials !== ':' ? { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } : {}),
        },
      });
      expect([proxied.status, direct.status]).toEqual([200, 200]);
      // Each answer has a boundary of its own; the rest of the media type is the same.
      const types = [proxied.headers.get('content-type') ?? '', direct.headers.get('content-type') ?? ''];
      const [proxyType, directType] = types.map((t) => t.replace(/;\s*boundary=[^;]*/, ''));
      expect(proxyType).toBe(directType);
      const [viaProxy, fromPacs] = [
        await parts(proxied.body, types[0]!),
        await parts(Buffer.from(await direct.arrayBuffer()), types[1]!),
      ];
      expect(viaProxy).toHaveLength(series.files.length);
      expect(viaProxy.map((p) => [p.headers['content-type'], sopOf(p.body)])).toEqual(
        fromPacs.map((p) => [p.headers['content-type'], sopOf(p.body)]),
      );
      viaProxy.forEach((part, i) => expect(part.body.equals(fromPacs[i]!.body)).toBe(true));
    });

    it('keeps the client’s connection: a series, its HEAD (no body), the series again and an instance, each whole', async () => {
      // The socket path writes the body straight to the client's socket, framing chunks itself: a wrong frame would
      // break the next answer on the same connection.
      const series = study.series.t1;
      const seriesPath = `/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}`;
      const accept = 'multipart/related; type="application/dicom"';
      const authorization = `Bearer ${await h.token('demo-physician')}`;
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const viaAgent = (path: string, method = 'GET') =>
        new Promise<{ body: Buffer; type: string; chunked: boolean; reused: boolean }>((resolve, reject) => {
          const url = `${h.baseUrl}/dicomweb${path}`;
          const req = httpRequest(url, { method, agent, headers: { accept, authorization } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.once('error', reject);
            res.once('end', () =>
              resolve({
                body: Buffer.concat(chunks),
                type: res.headers['content-type'] ?? '',
                chunked: res.headers['transfer-encoding'] === 'chunked',
                reused: req.reusedSocket,
              }),
            );
          });
          req.end();
          req.once('error', reject);
        });
      try {
        const first = await viaAgent(seriesPath);
        // HEAD answers have no body (RFC 9110 §9.3.2): one written anyway would be read as the next answer.
        const head = await viaAgent(seriesPath, 'HEAD');
        const again = await viaAgent(seriesPath);
        const instance = await viaAgent(`${seriesPath}/instances/${sopOf(series.files[2]!)}`);
        // (The series after the HEAD comes on a new connection: Node's HTTP client does not reuse one after a HEAD
        // answer, with a bare Node.js server too.)
        expect([first.reused, head.reused, instance.reused]).toEqual([false, true, true]);
        expect(head.body).toHaveLength(0);
        for (const answer of [first, again]) {
          const found = await parts(answer.body, answer.type);
          expect(found.map((part) => sopOf(part.body)).sort()).toEqual(series.files.map(sopOf).sort());
        }
        const [part] = await parts(instance.body, instance.type);
        expect(sopOf(part!.body)).toBe(sopOf(series.files[2]!));
      } finally {
        agent.destroy();
      }
    });

    it('answers an HTTP/1.0 client without chunked framing, the body delimited by the close', async () => {
      const series = study.series.t1;
      const path = `/dicomweb/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}`;
      const token = await h.token('demo-physician');
      const raw = await new Promise<Buffer>((resolve, reject) => {
        const socket = connect(Number(new URL(h.baseUrl).port), '127.0.0.1', () =>
          socket.write(
            `GET ${path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: multipart/related; type="application/dicom"\r\n` +
              `Authorization: Bearer ${token}\r\n\r\n`,
          ),
        );
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.once('end', () => resolve(Buffer.concat(chunks)));
        socket.once('error', reject);
      });
      const headEnd = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, headEnd).toString('latin1');
      expect(head).toMatch(/^HTTP\/1\.[01] 200/);
      expect(head).not.toMatch(/transfer-encoding/i);
      const type = /^content-type:\s*(.+)$/im.exec(head)?.[1] ?? '';
      const found = await parts(raw.subarray(headEnd + 4), type);
      expect(found.map((part) => sopOf(part.body)).sort()).toEqual(series.files.map(sopOf).sort());
    });

    it('answers 404 for an unknown study, 401 without or with a bad token', async () => {
      expect((await get(`/studies/1.2.3.999999/series/1.2.3.4/metadata`, { user: 'demo-physician' })).status).toBe(404);
      expect((await get(`/studies?PatientID=${patientId}`)).status).toBe(401);
      expect((await get(`/studies?PatientID=${patientId}`, { token: 'not.a.token' })).status).toBe(401);
    });

    it('answers 403 to a role without study:read, and audits the refusal', async () => {
      const refused = await get(`/studies/${study.studyInstanceUid}/metadata`, { token: NO_ROLE_TOKEN });
      expect(refused.status).toBe(403);
      expect(refused.body.toString()).toContain('not available for your role');
      expect(h.audit.records.at(-1)).toMatchObject({ userId: 'u-no-role', outcome: 'denied' });
    });

    it('writes an audit record with the patient for every PHI read, and a denied one for a refused role', async () => {
      const before = h.audit.records.length;
      const series = study.series.t1c;
      await get(`/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}/metadata`, {
        user: 'demo-nurse',
      });
      const record = h.audit.records.at(-1)!;
      expect(h.audit.records.length).toBe(before + 1);
      expect(record).toMatchObject({
        userId: 'demo-nurse',
        action: 'read',
        outcome: 'success',
        patientId,
        resource: `ImagingStudy/${study.studyInstanceUid}/series/${series.seriesInstanceUid}`,
      });
      await get(`/studies?PatientID=${patientId}`, { user: 'demo-admin' });
      expect(h.audit.records.at(-1)).toMatchObject({ action: 'search', patientId, outcome: 'success' });
      await get(`/studies/1.2.3.999999/metadata`, { user: 'demo-admin' });
      expect(h.audit.records.at(-1)).toMatchObject({ outcome: 'failure' });
    });
  });
}

proxyContract({
  name: 'the embedded DICOM store',
  async start() {
    const root = await mkdtemp(join(tmpdir(), 'cdss-dicomweb-proxy-'));
    const store: DicomStoreEmulator = await createDicomStoreEmulator({ root, port: await freePort() });
    return {
      url: store.url,
      client: new OrthancClient({ baseUrl: store.url }),
      async stop() {
        await store.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  },
});

describe.skipIf(!orthanc.available)('real Orthanc', () => {
  proxyContract({
    name: 'Orthanc 1.10 + DICOMweb',
    async start() {
      return { url: orthanc.url, client: new OrthancClient({ baseUrl: orthanc.url }), stop: async () => undefined };
    },
  });
});
