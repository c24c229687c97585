/**
 * `/dicomweb/...`: QIDO-RS and WADO-RS of the PACS (Orthanc's DICOMweb plugin, or the embedded DICOM store), proxied
 * with the same bearer authentication, RBAC (`study:read`) and audit trail as every other PHI route, so that
 * viewers (Cornerstone3D, OHIF) read images through the server and never hold PACS credentials.
 *
 * Answers are streamed: the upstream body is piped to the client as it arrives (with backpressure), never buffered
 * whole. DICOM JSON answers (QIDO results, metadata) have the upstream's own URLs (RetrieveURL, BulkDataURI)
 * rewritten to this server's `/dicomweb` on the fly; multipart answers (frames, instances, bulk data) pass through
 * byte for byte.
 *
 * The audit record is committed while the PACS is asked (both start at once), and no byte goes to the client before
 * it is durable, so a record that cannot be written fails the request before any PHI is served (fail-closed, as
 * `auditor.ts`). Should the PACS fail after all, a 'failure' record for the same request follows the 'success' one.
 * Meanwhile the large binary answers go on arriving, up to a bounded window held here ({@link WINDOW_BYTES}), so
 * that a slow commit (an fsync, or a MySQL transaction) overlaps the PACS's transfer instead of stalling it.
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part18.html
 */
import { request as httpRequest, type Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { createKeepAliveAgent } from '@cdss/orthanc-client';
import { ApiError } from '../http/errors.js';
import { defineRoute, type AnyRoute } from '../http/route.js';
import type { Auditor, AuditContext } from './auditor.js';
import type { Principal } from '../auth/tokens.js';
import { dicomUidSchema } from './studies.js';

extendZodWithOpenApi(z);

/** Where the proxy sends requests. */
export interface DicomWebUpstream {
  /** The PACS's DICOMweb root, e.g. `http://127.0.0.1:8042/dicom-web` (credentials in the URL are used for Basic auth). */
  url: string;
  /** Extra request headers (e.g. `Authorization`), for PACSes that authenticate otherwise. */
  headers?: Record<string, string>;
  /** Per-request time without a byte from the upstream before it is given up (default 30 s). */
  idleTimeoutMs?: number;
}

/** The public path prefix. */
export const DICOMWEB_PREFIX = '/dicomweb';

/** QIDO-RS query keys: attribute keywords or tags, and the reserved parameters. */
const qidoKey = /^(?:[A-Za-z][A-Za-z0-9]{0,63}|[0-9A-Fa-f]{8}(?:\.[0-9A-Fa-f]{8})*)$/;
const QIDO_RESERVED = new Set(['limit', 'offset', 'fuzzymatching', 'includefield']);
const MAX_QIDO_VALUE = 256;

/** A QIDO query: known keys only, bounded values; returned as the query string to forward. */
function qidoQuery(req: Request): string {
  const raw = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
  const params = new URLSearchParams(raw);
  for (const [key, value] of params) {
    if (!qidoKey.test(key) && !QIDO_RESERVED.has(key))
      throw new ApiError(400, 'invalid', `Unknown QIDO-RS query parameter ${JSON.stringify(key.slice(0, 64))}`);
    if (value.length > MAX_QIDO_VALUE) throw new ApiError(400, 'invalid', `Query parameter ${key} is too long`);
    if ((key === 'limit' || key === 'offset') && !/^\d{1,6}$/.test(value))
      throw new ApiError(400, 'invalid', `${key} must be a non-negative integer`);
    if (key === 'fuzzymatching' && value !== 'true' && value !== 'false')
      throw new ApiError(400, 'invalid', 'fuzzymatching must be true or false');
  }
  // Forwarded as received: re-encoding would turn %20 into +, which not every PACS reads as a space.
  return raw ? `?${raw}` : '';
}

/**
 * Replaces every occurrence of one byte string with another in a stream, across chunk boundaries (holds back at most
 * `from.length - 1` bytes between chunks).
 * @param from - what to replace (non-empty)
 * @param to - the replacement
 */
export function replaceInStream(from: string, to: string): Transform {
  const needle = Buffer.from(from);
  const replacement = Buffer.from(to);
  let carry = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const buffer = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const out: Buffer[] = [];
      let start = 0;
      for (let at = buffer.indexOf(needle, start); at >= 0; at = buffer.indexOf(needle, start)) {
        out.push(buffer.subarray(start, at), replacement);
        start = at + needle.length;
      }
      // A partial match may straddle the end: keep the last needle.length - 1 bytes for the next chunk.
      const keepFrom = Math.max(start, buffer.length - (needle.length - 1));
      out.push(buffer.subarray(start, keepFrom));
      carry = Buffer.from(buffer.subarray(keepFrom));
      callback(null, Buffer.concat(out));
    },
    flush(callback: TransformCallback) {
      callback(null, carry);
    },
  });
}

/** Response headers worth passing on. */
const PASSED_HEADERS = ['content-type', 'content-length', 'etag', 'last-modified'];

interface UpstreamTarget {
  base: URL;
  /** The DICOMweb root as the upstream writes it in its answers, without credentials or trailing slash. */
  publicBase: string;
  headers: Record<string, string>;
  request: typeof httpRequest;
  agent: Agent;
  idleTimeoutMs: number;
}

function upstreamTarget(upstream: DicomWebUpstream): UpstreamTarget {
  const base = new URL(upstream.url.replace(/\/+$/, ''));
  const headers: Record<string, string> = { ...upstream.headers };
  if (base.username) {
    const user = decodeURIComponent(base.username);
    const password = decodeURIComponent(base.password);
    headers['authorization'] ??= `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    base.username = '';
    base.password = '';
  }
  const https = base.protocol === 'https:';
  return {
    base,
    publicBase: base.href.replace(/\/+$/, ''),
    headers,
    request: https ? httpsRequest : httpRequest,
    // Keep-alive: a viewer loads a series as many small frame requests. Orthanc drops idle sockets after 1 s, so
    // ours are kept for less (see @cdss/orthanc-client's agent).
    agent: https
      ? new HttpsAgent({ keepAlive: true, maxSockets: 32, timeout: 500 })
      : createKeepAliveAgent({ maxSockets: 32 }),
    idleTimeoutMs: upstream.idleTimeoutMs ?? 30_000,
  };
}

/** Where an answer's body goes (the client's response). */
type Sink = NodeJS.WritableStream & { readonly writableLength: number };

/** Where the socket path writes an answer's body, one read at a time; a Writable is one. */
interface BodySink {
  /**
   * Writes one read. `release` comes with a view into a pool buffer, and is called once the bytes are taken (the
   * buffer may then be reused). False: wait for 'drain'.
   */
  write(view: Buffer, release?: () => void): boolean;
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
  end(): void;
}

/** An upstream answer whose headers are in and whose body has not been read yet. */
interface UpstreamAnswer {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string | undefined>;
  /** Streams the body into `sink` (with backpressure) and ends it; rejects if the upstream breaks off. */
  pipeTo(sink: Sink, transform?: Transform): Promise<void>;
  /**
   * Streams the body to the client as {@link pipeTo} does; where it can (see {@link clientBody}), straight to the
   * client's socket.
   */
  relayTo(res: ServerResponse): Promise<void>;
  /** Throws the body away and closes the upstream request. */
  discard(): void;
}

/** Sends one GET upstream with Node's HTTP client (keep-alive); resolves once the headers are in. */
function httpGet(
  target: UpstreamTarget,
  path: string,
  accept: string | undefined,
  signal: AbortSignal,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${target.base.pathname}${path}`, target.base);
    const req = target.request(url, {
      method: 'GET',
      agent: target.agent,
      signal,
      headers: {
        ...target.headers,
        ...(accept ? { accept } : {}),
        // Orthanc gzips frames when asked, which costs more than it saves on a LAN (notes/orthanc.md §8.2).
        'accept-encoding': 'identity',
      },
    });
    req.setTimeout(target.idleTimeoutMs, () =>
      req.destroy(Object.assign(new Error('PACS did not answer in time'), { code: 'ETIMEDOUT' })),
    );
    req.once('response', (response: IncomingMessage) =>
      resolve({
        status: response.statusCode ?? 502,
        headers: Object.fromEntries(
          Object.entries(response.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]),
        ),
        pipeTo: (sink, transform) => (transform ? pipeline(response, transform, sink) : pipeline(response, sink)),
        relayTo: (res) => pipeline(response, res),
        discard: () => void response.destroy(),
      }),
    );
    req.once('error', reject);
    req.end();
  });
}

/**
 * Read buffers of {@link socketGet}, reused across requests: Node's HTTP client allocates a new buffer for every
 * socket read, and on this kind of machine that churn, not the copying, is what limits a proxy's throughput
 * (`@cdss/core`'s socket-get.ts says the same of downloads). Each buffer goes back here once the client's socket
 * has taken its bytes.
 */
const READ_BUFFER_BYTES = 256 * 1024;
/**
 * Room kept free before and after each read buffer, so that a read goes to the client as one chunk of a chunked body
 * (its size line, the bytes, CRLF: RFC 9112 §7.1) in ONE write, framed in place with no copy. Written as three with
 * a cork (Node's `res.write`), a series retrieve cost the proxy 1.5–2.2 ms more of its main thread's CPU (a tenth)
 * in three same-run A/Bs (docs/guides/benchmarks.md). The longest size line of a read is `40000\r\n`.
 * @see https://www.rfc-editor.org/rfc/rfc9112#section-7.1
 */
const CHUNK_HEAD_ROOM = 8;
const CHUNK_TAIL_ROOM = 2;
const spareBuffers: Buffer[] = [];
const MAX_SPARE_BUFFERS = 64;
const takeBuffer = (): Buffer =>
  spareBuffers.pop() ??
  Buffer.allocUnsafeSlow(CHUNK_HEAD_ROOM + READ_BUFFER_BYTES + CHUNK_TAIL_ROOM).subarray(
    CHUNK_HEAD_ROOM,
    CHUNK_HEAD_ROOM + READ_BUFFER_BYTES,
  );
const giveBack = (buffer: Buffer): void => {
  if (spareBuffers.length < MAX_SPARE_BUFFERS) spareBuffers.push(buffer);
};
const CRLF = Buffer.from('\r\n');

/**
 * `view` as one chunk of a chunked body. A view into a pool buffer (`pooled`) is framed in place, in the room kept
 * around it (the bytes before it are the PACS's headers or that room, never body bytes still to be sent); any other
 * view gets its framing as separate buffers.
 */
function asChunk(view: Buffer, pooled: boolean): Buffer[] {
  const sizeLine = `${view.length.toString(16)}\r\n`;
  const start = view.byteOffset - sizeLine.length;
  const end = view.byteOffset + view.length + CRLF.length;
  if (!pooled || start < 0 || end > view.buffer.byteLength) return [Buffer.from(sizeLine, 'latin1'), view, CRLF];
  const chunk = Buffer.from(view.buffer, start, end - start);
  chunk.write(sizeLine, 0, 'latin1');
  CRLF.copy(chunk, chunk.length - CRLF.length);
  return [chunk];
}

/**
 * The client's response as a {@link BodySink} that writes straight to its socket (undefined where the answer has no
 * body, or no socket): the status line and headers go out first (Node's own), then each read in one socket write
 * (framed as a chunk in place, see {@link asChunk}, when Node chose chunked framing), and `end` lets Node finish the
 * message (the last chunk, or nothing after a Content-Length), so keep-alive, 'finish' and the server's accounting
 * stay Node's. Node's `res.write` costs a size line, the bytes and a CRLF as three writes and a cork per read.
 */
function clientBody(res: ServerResponse): BodySink | undefined {
  const socket = res.socket;
  if (!socket || socket.destroyed) return undefined;
  // No body goes with an answer to HEAD, nor with a 204 or 304 (RFC 9110 §9.3.2, §15.3.5, §15.4.5): Node's own
  // write leaves it out, where bytes written to the socket would be read as the next answer.
  if (res.req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return undefined;
  res.flushHeaders();
  const chunked = res.chunkedEncoding;
  return {
    write(view, release) {
      if (!chunked) return socket.write(view, release);
      const parts = asChunk(view, release !== undefined);
      if (parts.length === 1) return socket.write(parts[0] as Buffer, release);
      socket.cork();
      socket.write(parts[0] as Buffer);
      socket.write(parts[1] as Buffer);
      const flowing = socket.write(parts[2] as Buffer, release);
      socket.uncork();
      return flowing;
    },
    get writableLength() {
      return socket.writableLength;
    },
    once(event, listener) {
      return socket.once(event, listener);
    },
    end: () => void res.end(),
  };
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;
/**
 * The most body bytes one answer holds in this process: read ahead from the PACS while the audit record is being
 * made durable (none of it goes to the client before), then in flight to a client slower than the PACS. Bounded, so
 * a series is streamed, never held whole; large enough that the PACS keeps sending during an fsync.
 */
export const WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Sends one GET upstream over a socket of its own (HTTP/1.0, so the answer is never chunked) and streams the body
 * through reused read buffers. For the large binary answers (frames, instances, series); plain `http:` only.
 * Once the headers are in it goes on reading, up to {@link WINDOW_BYTES}, until the body is piped.
 */
function socketGet(
  target: UpstreamTarget,
  path: string,
  accept: string | undefined,
  signal: AbortSignal,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      host: target.base.host,
      ...target.headers,
      ...(accept ? { accept } : {}),
      'accept-encoding': 'identity',
    };
    for (const [name, value] of Object.entries(headers))
      if (/[\r\n\0]/.test(name + value)) return reject(new ApiError(400, 'invalid', `Invalid ${name} header`));
    let head: Buffer | undefined;
    let answer: UpstreamAnswer | undefined;
    /** Body bytes read before the body was piped: views, with the pool buffer each one lives in (if any). */
    let held: Array<{ view: Buffer; buffer?: Buffer }> = [];
    let heldBytes = 0;
    let sink: BodySink | undefined;
    let finish: { resolve(): void; reject(error: Error): void } | undefined;
    let expected: number | undefined;
    let received = 0;
    let ended = false;
    let failed: Error | undefined;
    /**
     * The buffer Node holds for this socket's next read: it asks for one after every read, so one is always taken
     * and, once the answer is over, never filled. It goes back to the pool when the socket closes; otherwise every
     * request would leave one to the garbage collector and allocate a fresh one.
     */
    let nextReadBuffer: Buffer | undefined;

    /** Writes one chunk to the client; false (the socket pauses) when too much waits to go out. */
    const forward = (view: Buffer, buffer?: Buffer): boolean => {
      const to = sink as BodySink;
      const flowing = to.write(view, buffer ? () => giveBack(buffer) : undefined);
      // Not at the writable's 16 KiB mark: the read that just came in is up to 256 KiB.
      if (flowing || to.writableLength < WINDOW_BYTES) return true;
      to.once('drain', () => socket.resume());
      return false;
    };
    const complete = (): void => {
      if (expected !== undefined && received < expected) {
        failed = new Error('the PACS answer ended early');
        finish?.reject(failed);
        return;
      }
      sink?.end();
      finish?.resolve();
    };
    const onHeaders = (data: Buffer, end: number, buffer?: Buffer): boolean => {
      const lines = data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
      const parsed: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      if (!Number.isFinite(status) || parsed['transfer-encoding']) {
        if (buffer) giveBack(buffer);
        socket.destroy(new Error('unexpected answer framing from the PACS'));
        return false;
      }
      expected = parsed['content-length'] !== undefined ? Number(parsed['content-length']) : undefined;
      const rest = data.subarray(end + HEAD_END.length);
      received = heldBytes = rest.length;
      if (rest.length > 0) held.push(buffer ? { view: rest, buffer } : { view: rest });
      else if (buffer) giveBack(buffer);
      const start = (to: BodySink): Promise<void> =>
        new Promise<void>((ok, fail) => {
          sink = to;
          finish = { resolve: ok, reject: fail };
          if (failed) return fail(failed);
          const early = held;
          held = [];
          heldBytes = 0;
          for (const { view, buffer: pooled } of early) to.write(view, pooled ? () => giveBack(pooled) : undefined);
          if (ended) complete();
          else if (to.writableLength < WINDOW_BYTES) socket.resume();
          else {
            socket.pause();
            to.once('drain', () => socket.resume());
          }
        });
      answer = {
        status,
        headers: parsed,
        pipeTo: start,
        relayTo: (res) => {
          const body = clientBody(res);
          return body ? start(body) : start(res);
        },
        discard: () => void socket.destroy(),
      };
      resolve(answer);
      return heldBytes < WINDOW_BYTES;
    };

    const socket = connect({
      host: target.base.hostname,
      port: Number(target.base.port || 80),
      noDelay: true,
      onread: {
        buffer: () => (nextReadBuffer = takeBuffer()),
        callback: (nread: number, buffer: Uint8Array): boolean => {
          nextReadBuffer = undefined;
          const bytes = buffer as Buffer;
          if (!answer) {
            // Usually the whole head is in the first read: the body's first bytes stay in that buffer.
            if (!head) {
              const end = bytes.subarray(0, nread).indexOf(HEAD_END);
              if (end >= 0) return onHeaders(bytes.subarray(0, nread), end, bytes);
            }
            head = Buffer.concat([head ?? Buffer.alloc(0), bytes.subarray(0, nread)]);
            giveBack(bytes);
            const end = head.indexOf(HEAD_END);
            if (end >= 0) return onHeaders(head, end);
            if (head.length > MAX_HEAD_BYTES) socket.destroy(new Error('PACS answer headers too large'));
            return true;
          }
          received += nread;
          if (sink) return forward(bytes.subarray(0, nread), bytes);
          // Not piped yet (the audit record is being written): keep it, up to the window.
          held.push({ view: bytes.subarray(0, nread), buffer: bytes });
          heldBytes += nread;
          return heldBytes < WINDOW_BYTES;
        },
      },
    });
    socket.setTimeout(target.idleTimeoutMs, () =>
      socket.destroy(Object.assign(new Error('PACS did not answer in time'), { code: 'ETIMEDOUT' })),
    );
    socket.once('close', () => {
      if (nextReadBuffer) giveBack(nextReadBuffer);
      nextReadBuffer = undefined;
    });
    const onAbort = (): void => void socket.destroy(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
      socket.write(`GET ${target.base.pathname}${path} HTTP/1.0\r\n${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.once('end', () => {
      signal.removeEventListener('abort', onAbort);
      if (!answer) return reject(new Error('the PACS closed the connection without an answer'));
      ended = true;
      // Before the body is piped, pipeTo completes it.
      if (sink) complete();
    });
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      failed = error;
      if (!answer) reject(error);
      else finish?.reject(error);
    });
  });
}

async function readSmall(answer: UpstreamAnswer, limit = 64 * 1024): Promise<string> {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (text.length < limit) text += chunk.toString('utf8');
      callback();
    },
  });
  await answer.pipeTo(sink);
  return text.slice(0, limit);
}

/** Maps an upstream failure status to the answer our client gets (never the upstream's own text). */
function upstreamFailure(status: number): ApiError {
  if (status === 404) return new ApiError(404, 'not-found', 'Not found in the PACS');
  // A query our document allows but the PACS cannot process (an attribute or value it does not know): 422.
  if (status === 400) return new ApiError(422, 'processing', 'The PACS refused the query');
  if (status === 406) return new ApiError(406, 'not-supported', 'The PACS cannot answer in the requested media type');
  return new ApiError(503, 'transient', 'The PACS is unavailable; try again later');
}

/** What each route asks for. */
type Kind = 'qido' | 'metadata' | 'retrieve' | 'frames' | 'bulk';

/** Dependencies of {@link dicomWebProxyRoutes}. */
export interface DicomWebProxyDeps {
  upstream: DicomWebUpstream;
  auditor: Auditor;
  logger: Logger;
}

/**
 * The `/dicomweb` routes.
 * @param deps - the upstream PACS, the auditor and a logger
 */
export function dicomWebProxyRoutes(deps: DicomWebProxyDeps): AnyRoute[] {
  const target = upstreamTarget(deps.upstream);
  const { auditor, logger } = deps;

  // Which patient a study belongs to, for the audit record; study → patient never changes, so a bounded map will do.
  const patientOfStudy = new Map<string, Promise<string | undefined>>();
  const PATIENT_CACHE_SIZE = 5_000;
  function lookupPatient(studyUid: string): Promise<string | undefined> {
    let found = patientOfStudy.get(studyUid);
    if (found) return found;
    found = (async () => {
      const controller = new AbortController();
      const response = await httpGet(
        target,
        `/studies?StudyInstanceUID=${encodeURIComponent(studyUid)}`,
        'application/dicom+json',
        controller.signal,
      );
      const text = await readSmall(response);
      if (response.status !== 200 || !text) return undefined;
      const [study] = JSON.parse(text) as Array<Record<string, { Value?: unknown[] }>>;
      const id = study?.['00100020']?.Value?.[0];
      return typeof id === 'string' ? id : undefined;
    })().catch(() => {
      patientOfStudy.delete(studyUid);
      return undefined;
    });
    if (patientOfStudy.size >= PATIENT_CACHE_SIZE) patientOfStudy.delete(patientOfStudy.keys().next().value as string);
    patientOfStudy.set(studyUid, found);
    return found;
  }

  async function proxy(
    kind: Kind,
    ctx: { req: Request; res: Response; principal: Principal; requestId: string },
    uids: { study?: string; series?: string; instance?: string },
  ): Promise<void> {
    const { req, res } = ctx;
    const upstreamPath = req.path.slice(DICOMWEB_PREFIX.length) + (kind === 'qido' ? qidoQuery(req) : '');
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    res.once('close', abort);
    const patientFilter =
      kind === 'qido' && !uids.study ? new URLSearchParams(req.url.split('?')[1]).get('PatientID') : null;
    const audit: AuditContext = {
      principal: ctx.principal,
      requestId: ctx.requestId,
      action: kind === 'qido' ? 'search' : 'read',
      resource: uids.study
        ? `ImagingStudy/${uids.study}${uids.series ? `/series/${uids.series}` : ''}${uids.instance ? `/instances/${uids.instance}` : ''}`
        : 'ImagingStudy',
      ...(patientFilter && !/[*?\\]/.test(patientFilter) ? { patientId: patientFilter } : {}),
    };
    // Large binary answers take the socket path; DICOM JSON (rewritten) and https upstreams use Node's client.
    const fast = kind !== 'qido' && kind !== 'metadata' && target.base.protocol === 'http:';
    const send = fast ? socketGet : httpGet;
    // The record is committed while the PACS is asked, not after it answers: a commit (an fsync, or a MySQL
    // transaction) would otherwise add its whole time to every answer's first byte. It says 'success' before the
    // outcome is known; should the PACS then fail, a 'failure' record with the same request id follows it (the
    // later record is the outcome). Nothing of the answer goes out before the record is durable, and a record that
    // cannot be written fails the request and lets the PACS go (fail-closed, as `auditor.ts`).
    const recorded = (uids.study ? lookupPatient(uids.study) : Promise.resolve(undefined)).then((patientId) => {
      if (patientId) audit.patientId = patientId;
      return auditor.record(audit, 'success');
    });
    recorded.catch(abort);
    const answered = send(target, upstreamPath, req.header('accept'), controller.signal).then(
      (answer) => {
        if (answer.status < 400) return answer;
        answer.discard();
        throw upstreamFailure(answer.status);
      },
      (error: unknown) => {
        if (error instanceof ApiError) throw error;
        if (!controller.signal.aborted)
          logger.warn({ err: { message: (error as Error).message }, requestId: ctx.requestId }, 'PACS request failed');
        throw new ApiError(503, 'transient', 'The PACS is unavailable; try again later');
      },
    );
    const [answer, record] = await Promise.allSettled([answered, recorded]);
    res.off('close', abort);
    if (record.status === 'rejected') {
      // No record: nothing of the answer goes out, and the upstream request is let go.
      if (answer.status === 'fulfilled') answer.value.discard();
      throw record.reason;
    }
    if (answer.status === 'rejected') {
      await auditor.record(audit, 'failure');
      throw answer.reason;
    }
    const response = answer.value;
    res.status(response.status);
    const contentType = response.headers['content-type'] ?? '';
    const rewrite = /json/i.test(contentType);
    for (const name of PASSED_HEADERS) {
      const value = response.headers[name];
      // A rewritten body changes length: let it be chunked.
      if (value !== undefined && !(rewrite && name === 'content-length')) res.setHeader(name, value);
    }
    res.setHeader('Cache-Control', kind === 'qido' ? 'private, no-store' : 'private, max-age=300');
    if (req.method === 'HEAD') {
      // The headers are the whole answer: let the PACS go instead of reading its body for nothing.
      response.discard();
      res.end();
      return;
    }
    res.once('close', abort);
    try {
      if (!rewrite) await response.relayTo(res);
      else {
        const publicBase = `${req.protocol}://${req.get('host') ?? 'localhost'}${DICOMWEB_PREFIX}`;
        await response.pipeTo(res, replaceInStream(target.publicBase, publicBase));
      }
    } catch (error) {
      // Headers are gone: all that is left is to cut the connection so the client sees a truncated answer.
      if (!controller.signal.aborted)
        logger.warn({ err: { message: (error as Error).message }, requestId: ctx.requestId }, 'DICOMweb stream broken');
      res.destroy();
    } finally {
      res.off('close', abort);
    }
  }

  const studyParams = z.object({ studyUid: dicomUidSchema });
  const seriesParams = studyParams.extend({ seriesUid: dicomUidSchema });
  const instanceParams = seriesParams.extend({ instanceUid: dicomUidSchema });
  const frameParams = instanceParams.extend({
    frames: z
      .string()
      .max(200)
      .regex(/^[1-9]\d{0,5}(,[1-9]\d{0,5})*$/, 'frame numbers from 1, comma-separated'),
  });
  const json = z.array(z.record(z.string(), z.unknown())).openapi({ description: 'DICOM JSON (PS3.18 F.2)' });
  const multipart = z.string().openapi({ type: 'string', format: 'binary' });
  const common = { tags: ['dicomweb'], access: { permission: 'study:read' as const }, errors: [404, 406, 503] };
  // Documents the common QIDO-RS parameters; any attribute keyword or tag may be matched (checked in qidoQuery).
  const text = z.string().max(MAX_QIDO_VALUE).optional();
  const qidoQueryDoc = z.looseObject({
    PatientID: text,
    StudyInstanceUID: text,
    StudyDate: text.openapi({ description: 'a date or a range, YYYYMMDD-YYYYMMDD' }),
    Modality: text,
    SeriesDescription: text,
    includefield: z.union([z.string(), z.array(z.string())]).optional(),
    limit: z
      .string()
      .regex(/^[0-9]{1,6}$/)
      .optional(),
    offset: z
      .string()
      .regex(/^[0-9]{1,6}$/)
      .optional(),
    fuzzymatching: z.enum(['true', 'false']).optional(),
  });

  type Handler = AnyRoute['handler'];
  const handle =
    (kind: Kind): Handler =>
    async ({ params, req, res, principal, requestId }) => {
      const p = (params ?? {}) as { studyUid?: string; seriesUid?: string; instanceUid?: string };
      await proxy(
        kind,
        { req, res, principal, requestId },
        {
          ...(p.studyUid ? { study: p.studyUid } : {}),
          ...(p.seriesUid ? { series: p.seriesUid } : {}),
          ...(p.instanceUid ? { instance: p.instanceUid } : {}),
        },
      );
      return { body: undefined };
    };

  const qido = (path: string, operationId: string, summary: string, params?: z.ZodType): AnyRoute =>
    defineRoute({
      method: 'get',
      path: `${DICOMWEB_PREFIX}${path}`,
      operationId,
      summary,
      ...common,
      ...(params ? { params } : {}),
      query: qidoQueryDoc,
      response: { status: 200, description: 'Matching objects', schema: json, contentType: 'application/dicom+json' },
      errors: [400, 422, 503],
      handler: handle('qido'),
    });
  const wado = (
    kind: Exclude<Kind, 'qido'>,
    path: string,
    operationId: string,
    summary: string,
    params: z.ZodType,
  ): AnyRoute =>
    defineRoute<z.ZodType, z.ZodType, z.ZodType, z.ZodType>({
      method: 'get',
      path: `${DICOMWEB_PREFIX}${path}`,
      operationId,
      summary,
      ...common,
      params,
      response:
        kind === 'metadata'
          ? { status: 200, description: 'Metadata', schema: json, contentType: 'application/dicom+json' }
          : {
              status: 200,
              description: 'multipart/related parts',
              schema: multipart,
              contentType: 'multipart/related',
            },
      handler: handle(kind),
    });

  const S = '/studies/{studyUid}';
  const SE = `${S}/series/{seriesUid}`;
  const I = `${SE}/instances/{instanceUid}`;
  return [
    qido('/studies', 'dicomwebSearchStudies', 'QIDO-RS: search for studies'),
    qido(`${S}/series`, 'dicomwebSearchSeries', 'QIDO-RS: series of a study', studyParams),
    qido(`${S}/instances`, 'dicomwebSearchStudyInstances', 'QIDO-RS: instances of a study', studyParams),
    qido(`${SE}/instances`, 'dicomwebSearchInstances', 'QIDO-RS: instances of a series', seriesParams),
    wado('metadata', `${S}/metadata`, 'dicomwebStudyMetadata', 'WADO-RS: metadata of a study', studyParams),
    wado('metadata', `${SE}/metadata`, 'dicomwebSeriesMetadata', 'WADO-RS: metadata of a series', seriesParams),
    wado('metadata', `${I}/metadata`, 'dicomwebInstanceMetadata', 'WADO-RS: metadata of an instance', instanceParams),
    wado('frames', `${I}/frames/{frames}`, 'dicomwebFrames', 'WADO-RS: pixel data of frames', frameParams),
    wado(
      'bulk',
      `${I}/bulk/{tag}`,
      'dicomwebBulkData',
      'WADO-RS: bulk data of an instance',
      instanceParams.extend({ tag: z.string().regex(/^[0-9A-Fa-f]{8}$/) }),
    ),
    wado('retrieve', S, 'dicomwebRetrieveStudy', 'WADO-RS: the instances of a study', studyParams),
    wado('retrieve', SE, 'dicomwebRetrieveSeries', 'WADO-RS: the instances of a series', seriesParams),
    wado('retrieve', I, 'dicomwebRetrieveInstance', 'WADO-RS: one instance', instanceParams),
  ];
}
