/**
 * Client behaviour against a scripted local server (127.0.0.1, port 0): headers it sends, paging of the change
 * feed, errors it raises. The API semantics are covered by the contract suite (real Orthanc and the emulator).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@cdss/core';
import { JobFailedError, OrthancClient } from './client.js';
import { StowError } from './dicomweb.js';
import type { OrthancChange } from './schemas.js';
import { listenOnFreePort } from '@cdss/core/testing';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;
const routes = new Map<string, Handler>();
const seen: Array<{ method: string; path: string; headers: IncomingMessage['headers'] }> = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ method: req.method ?? '', path: url.pathname, headers: req.headers });
    const h = routes.get(`${req.method} ${url.pathname}`);
    if (!h) {
      res.writeHead(404).end('{}');
      return;
    }
    h(req, res, url);
  });
  await listenOnFreePort(server);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const json = (res: ServerResponse, body: unknown, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const change = (seq: number): OrthancChange => ({
  ChangeType: 'NewInstance',
  Date: '20260101T000000',
  ID: `i${seq}`,
  Path: `/instances/i${seq}`,
  ResourceType: 'Instance',
  Seq: seq,
});

describe('OrthancClient', () => {
  it('sends Basic auth from the URL and identity encoding for binary transfers', async () => {
    routes.set('GET /instances/abc/frames/0/raw', (_q, res) =>
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from([1, 2, 3, 4])),
    );
    const client = new OrthancClient({ baseUrl: base.replace('http://', 'http://user:pa%40ss@') });
    const frame = await client.getRawFrame('abc');
    expect(Array.from(frame)).toEqual([1, 2, 3, 4]);
    const req = seen[seen.length - 1]!;
    expect(req.headers['accept-encoding']).toBe('identity');
    expect(req.headers['authorization']).toBe(`Basic ${Buffer.from('user:pa@ss').toString('base64')}`);
  });

  it('pages through /changes, resumes from a checkpoint and stops on abort', async () => {
    const log = Array.from({ length: 23 }, (_, i) => change(i + 1));
    routes.set('GET /changes', (_q, res, url) => {
      const since = Number(url.searchParams.get('since'));
      const limit = Number(url.searchParams.get('limit'));
      const after = log.filter((c) => c.Seq > since);
      const page = after.slice(0, limit);
      json(res, { Changes: page, Done: after.length <= limit, Last: page.at(-1)?.Seq ?? since });
    });
    const client = new OrthancClient({ baseUrl: base });
    const all: number[] = [];
    for await (const c of client.changes({ limit: 5, follow: false })) all.push(c.Seq);
    expect(all).toEqual(log.map((c) => c.Seq));
    const resumed: number[] = [];
    for await (const c of client.changes({ since: 17, limit: 4, follow: false })) resumed.push(c.Seq);
    expect(resumed).toEqual([18, 19, 20, 21, 22, 23]);
    // follow: polls until aborted, and sees a change appended while it waits
    const controller = new AbortController();
    const got: number[] = [];
    const watching = (async () => {
      for await (const c of client.changes({ since: 23, pollIntervalMs: 20, signal: controller.signal })) {
        got.push(c.Seq);
        controller.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 60));
    log.push(change(24));
    await watching;
    expect(got).toEqual([24]);
  });

  it('validates answers and options', async () => {
    routes.set('GET /system', (_q, res) => json(res, { Name: 'x' }));
    const client = new OrthancClient({ baseUrl: base });
    await expect(client.getSystem()).rejects.toBeInstanceOf(ValidationError);
    expect(() => new OrthancClient({ baseUrl: 'ftp://x' })).toThrow(ValidationError);
    expect(() => new OrthancClient({ baseUrl: base, concurrency: 0 })).toThrow(ValidationError);
  });

  it('reports failed jobs and partial STOW-RS failures', async () => {
    routes.set('GET /jobs/j1', (_q, res) =>
      json(res, {
        ID: 'j1',
        State: 'Failure',
        Progress: 10,
        Type: 'Archive',
        ErrorCode: 2,
        ErrorDescription: 'disk full',
      }),
    );
    routes.set('POST /dicom-web/studies', (req, res) => {
      req.resume();
      req.on('end', () =>
        res.writeHead(202, { 'content-type': 'application/dicom+json' }).end(
          JSON.stringify({
            '00081199': { vr: 'SQ', Value: [{ '00081155': { vr: 'UI', Value: ['1.2.3.1'] } }] },
            '00081198': {
              vr: 'SQ',
              Value: [{ '00081155': { vr: 'UI', Value: ['1.2.3.2'] }, '00081197': { vr: 'US', Value: [49152] } }],
            },
          }),
        ),
      );
    });
    const client = new OrthancClient({ baseUrl: base });
    await expect(client.waitForJob('j1')).rejects.toThrow(JobFailedError);
    const err = await client.dicomweb.storeInstances([new Uint8Array(10), new Uint8Array(10)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StowError);
    expect((err as StowError).stored).toEqual(['1.2.3.1']);
    expect((err as StowError).failed).toEqual([{ sopInstanceUid: '1.2.3.2', reason: '49152' }]);
    const stow = seen.findLast((s) => s.path === '/dicom-web/studies')!;
    expect(stow.headers['content-type']).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
  });

  it('streams WADO-RS series parts and rejects a non-multipart answer', async () => {
    routes.set('GET /dicom-web/studies/1/series/2', (_q, res) => {
      res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=BB' });
      res.write('--BB\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\nabc\r\n');
      setTimeout(() => res.end('--BB\r\nContent-Type: application/dicom\r\n\r\ndefg\r\n--BB--\r\n'), 10);
    });
    routes.set('GET /dicom-web/studies/1/series/3', (_q, res) => json(res, []));
    const client = new OrthancClient({ baseUrl: base });
    const parts: string[] = [];
    for await (const p of client.dicomweb.retrieveSeries('1', '2')) parts.push(Buffer.from(p).toString());
    expect(parts).toEqual(['abc', 'defg']);
    expect(seen.at(-1)!.headers['accept-encoding']).toBe('identity');
    const it = client.dicomweb.retrieveSeries('1', '3');
    await expect(it.next()).rejects.toThrow(/expected a multipart response/);
  });
});

describe('connection reuse', () => {
  it('reuses sockets although the server announces Keep-Alive: timeout=1', async () => {
    const sockets = new Set<unknown>();
    const s = createServer((req, res) => {
      sockets.add(req.socket);
      res.writeHead(200, { 'content-type': 'application/json', 'keep-alive': 'timeout=1' }).end(JSON.stringify([]));
    });
    await listenOnFreePort(s);
    try {
      const client = new OrthancClient({ baseUrl: `http://127.0.0.1:${(s.address() as AddressInfo).port}` });
      for (let i = 0; i < 5; i++) await client.list('Patient');
      expect(sockets.size).toBe(1);
    } finally {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
