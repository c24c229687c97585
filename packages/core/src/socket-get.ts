/**
 * A bodiless request over its own socket whose response body is read into one reused buffer and handed to a
 * synchronous consumer, chunk by chunk.
 *
 * Why: Node's HTTP client allocates a fresh buffer for every socket read (64 KiB), so a large download churns
 * through as much new memory as it receives; the garbage collector and the kernel's page faults on that memory
 * (very costly in virtual machines that hand freed pages back to the host) then cost more than the transfer
 * itself. A socket opened with `onread` reads into a buffer it keeps
 * (https://nodejs.org/docs/latest-v20.x/api/net.html#socketconnectoptions-connectlistener), and a consumer that
 * copies the bytes where they belong before returning (into a volume, say) makes the download allocation-free.
 *
 * The response is framed by http-parser-js (Content-Length, chunked, or until the connection closes). The request
 * asks for `Connection: close`: one large transfer per connection, never a pooled socket in an unknown state.
 * Used by {@link HttpTransport} for `responseType: 'chunks'`; not exported from the package.
 * @packageDocumentation
 */
import net from 'node:net';
import tls from 'node:tls';
import { HTTPParser } from 'http-parser-js';

/** What {@link socketGet} reports of the response. */
export interface SocketResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The body of a response that `isOk` refused, up to `maxErrorBodyBytes`. */
  errorBody?: Buffer;
}

/** One request. */
export interface SocketGetOptions {
  method: string;
  url: URL;
  /** Lower-case names; `host` and `connection` are set here. */
  headers: Readonly<Record<string, string>>;
  signal: AbortSignal;
  /** TLS options for https URLs (CA, client certificate, ...). */
  tls?: tls.ConnectionOptions | undefined;
  /** Whether the body of a response with this status goes to `onChunk` (else it is kept as `errorBody`). */
  isOk(status: number): boolean;
  /** Called once the headers of an accepted response are in, before the first chunk. A throw fails the request. */
  onHeaders?(response: SocketResponse): void;
  /** Each body chunk of an accepted response, in order: a view valid only during the call. A throw fails the request. */
  onChunk(chunk: Buffer): void;
  /** Fails the request when no byte arrives for this long after the headers (ms). */
  idleTimeoutMs: number;
  /** Makes the idle failure. */
  idleError(): Error;
  /** Default 256 KiB. */
  readBufferBytes?: number | undefined;
  maxErrorBodyBytes: number;
}

const READ_BUFFER_BYTES = 256 * 1024;
/** Read buffers of finished requests, reused: a fresh one would be new memory every time. */
const spareReadBuffers: Buffer[] = [];
const MAX_SPARE_READ_BUFFERS = 8;

/** A header name or value that would split the request (CR, LF, NUL) is refused rather than sent. */
const UNSAFE_HEADER = /[\r\n\0]/;

/** The request head. Exported for tests. */
export function requestHead(method: string, url: URL, headers: Readonly<Record<string, string>>): string {
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'host' || name === 'connection') continue;
    if (UNSAFE_HEADER.test(name) || UNSAFE_HEADER.test(value) || name === '' || name.includes(':')) {
      throw new TypeError(`invalid HTTP header ${JSON.stringify(name)}`);
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}connection: close\r\n\r\n`;
}

/** Header list `[name, value, name, value, ...]` to a record. */
function headerRecord(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = (list[i] as string).toLowerCase();
    const value = list[i + 1] as string;
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

/**
 * Sends the request and reads the response as described in the module comment.
 * @returns the status and headers once the whole body has been delivered
 * @throws the error of a failed connection or malformed response, the consumer's error, `idleError()`, or
 *   `signal.reason` when aborted
 */
export function socketGet(options: SocketGetOptions): Promise<SocketResponse> {
  const { url, signal } = options;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  const head = requestHead(options.method, url, options.headers);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const size = options.readBufferBytes ?? READ_BUFFER_BYTES;
  const buffer = (size === READ_BUFFER_BYTES ? spareReadBuffers.pop() : undefined) ?? Buffer.allocUnsafe(size);

  return new Promise<SocketResponse>((resolve, reject) => {
    const parser = new HTTPParser(HTTPParser.RESPONSE);
    let response: SocketResponse | undefined;
    let accepted = false;
    const errorChunks: Buffer[] = [];
    let errorBytes = 0;
    let settled = false;

    const finish = (error: unknown, value?: SocketResponse): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      // The buffer is free once the socket is gone (no read can land in it any more): keep it for the next request.
      if (buffer.length === READ_BUFFER_BYTES && spareReadBuffers.length < MAX_SPARE_READ_BUFFERS) {
        spareReadBuffers.push(buffer);
      }
      if (error !== undefined) reject(error as Error);
      else resolve(value as SocketResponse);
    };
    const onAbort = (): void => finish(signal.reason);

    // http-parser-js calls these with one info object (its default mode) or, when another library switched it to
    // Node's calling convention, with positional arguments; both are read.
    parser[HTTPParser.kOnHeadersComplete] = (...args: unknown[]): void => {
      const info = (
        typeof args[0] === 'object' && args[0] !== null
          ? args[0]
          : { headers: args[2], statusCode: args[5], statusMessage: args[6] }
      ) as { headers: string[]; statusCode: number; statusMessage: string };
      response = { status: info.statusCode, statusText: info.statusMessage, headers: headerRecord(info.headers) };
      accepted = options.isOk(info.statusCode);
      if (accepted) options.onHeaders?.(response);
      socket.setTimeout(options.idleTimeoutMs);
    };
    parser[HTTPParser.kOnBody] = (chunk: Buffer, offset: number, length: number): void => {
      const view = offset === 0 && length === chunk.length ? chunk : chunk.subarray(offset, offset + length);
      if (accepted) {
        options.onChunk(view);
      } else if (errorBytes < options.maxErrorBodyBytes) {
        // Copied: the read buffer is reused.
        errorChunks.push(Buffer.from(view.subarray(0, options.maxErrorBodyBytes - errorBytes)));
        errorBytes += view.length;
      }
    };
    parser[HTTPParser.kOnMessageComplete] = (): void => {
      if (!response) return;
      if (!accepted) response.errorBody = Buffer.concat(errorChunks);
      finish(undefined, response);
    };

    const connectOptions = {
      host,
      port,
      onread: {
        buffer,
        callback: (bytes: number, buf: Uint8Array): boolean => {
          if (settled) return false;
          let result: number | Error;
          try {
            result = parser.execute(buf as Buffer, 0, bytes);
          } catch (error) {
            // the consumer threw
            finish(error);
            return false;
          }
          if (result instanceof Error) finish(new Error(`malformed HTTP response: ${result.message}`));
          return !settled;
        },
      },
    };
    const socket =
      url.protocol === 'https:'
        ? tls.connect({
            ...options.tls,
            ...connectOptions,
            ...(net.isIP(host) === 0 ? { servername: options.tls?.servername ?? host } : {}),
          })
        : net.connect(connectOptions);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    socket.write(head);
    socket.on('timeout', () => finish(options.idleError()));
    socket.on('error', (error) => finish(error));
    const closedEarly = (): void => {
      const error = new Error('connection closed before the response was complete') as Error & { code: string };
      error.code = 'ECONNRESET';
      finish(error);
    };
    socket.on('end', () => {
      // The server closed its side: a body without Content-Length ends here; anything else ended early.
      if (settled) return;
      const result = parser.finish();
      if (result instanceof Error || !response) closedEarly();
    });
    socket.on('close', () => {
      if (!settled) closedEarly();
    });
  });
}
