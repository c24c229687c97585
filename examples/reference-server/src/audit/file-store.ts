/**
 * The sandbox's audit store: a JSON-lines file, one record per line, only ever appended to. Each batch is one
 * `write` on a file kept open with O_DSYNC, so the write returns only once the data is durable (what a write and
 * an `fdatasync` do, in one call to the thread pool instead of two: the event loop picks up one completion per
 * group, not two); reads go backwards from the end, so the newest page costs the same however long the file is.
 * One process writes a file (sandbox mode runs one process).
 */
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  auditRecordSchema,
  decodeCursor,
  encodeCursor,
  matchesQuery,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
  type AuditStore,
} from '../audit.js';
import type { StateTransaction } from '../domain/ports.js';

const NEWLINE = 0x0a;
/** O_DSYNC where the platform has it (Linux, macOS); elsewhere each batch is followed by an `fdatasync`. */
const DSYNC: number | undefined = constants.O_DSYNC;
/** `a+` (read, append, create) with synchronised data writes. */
const APPEND_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | (DSYNC ?? 0);
/** Bytes read per step when reading backwards. */
const CHUNK = 64 * 1024;

/** A JSON-lines audit file. */
export class FileAuditStore implements AuditStore {
  private handle: Promise<FileHandle> | undefined;
  /** Bytes of whole, durable lines: what readers see and where the next batch goes. */
  private size = 0;
  /** Set when a failed batch could not be cut off the file: nothing more is appended until it is. */
  private torn = false;

  /** @param path - the file (created with mode 0600, its folder as needed) */
  constructor(readonly path: string) {}

  async appendBatch(
    records: readonly AuditRecord[],
    alsoCommit?: (transaction: StateTransaction) => Promise<void>,
  ): Promise<void> {
    const file = await this.open();
    if (this.torn) {
      await file.truncate(this.size);
      this.torn = false;
    }
    const data = Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8');
    try {
      for (let written = 0; written < data.length;) {
        written += (await file.write(data, written, data.length - written)).bytesWritten;
      }
      if (DSYNC === undefined) await file.datasync();
    } catch (error) {
      // The batch failed, so none of its requests will answer: cut off whatever part of it reached the file, so
      // the next batch does not follow half a line (and no record stays whose request was refused).
      await file.truncate(this.size).catch(() => {
        this.torn = true;
      });
      throw error;
    }
    this.size += data.length;
    // The file has no transactions: the rest follows the records (a crash between the two loses only the copy).
    await alsoCommit?.({});
  }

  async list(query: AuditQuery): Promise<AuditPage> {
    const end = query.cursor ? (decodeCursor('f', query.cursor, 1)[0] as number) : undefined;
    await this.open();
    let reader: FileHandle;
    try {
      reader = await open(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { items: [] };
      throw error;
    }
    try {
      const items: AuditRecord[] = [];
      for await (const { record, lineEnd } of readBackwards(reader, Math.min(end ?? this.size, this.size))) {
        if (!matchesQuery(record, query)) continue;
        // One more match than the page holds: there is a next page, and it ends with this record.
        if (items.length === query.limit) return { items, nextCursor: encodeCursor('f', [lineEnd]) };
        items.push(record);
      }
      return { items };
    } finally {
      await reader.close();
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle).close();
  }

  /** Opens the file once; a torn last line (a batch that never finished, so never answered) is cut off. */
  private open(): Promise<FileHandle> {
    this.handle ??= (async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const file = await open(this.path, APPEND_FLAGS, 0o600);
      try {
        const { size } = await file.stat();
        this.size = await lastLineEnd(file, size);
        if (this.size < size) await file.truncate(this.size);
        return file;
      } catch (error) {
        await file.close();
        throw error;
      }
    })().catch((error: unknown) => {
      this.handle = undefined;
      throw error;
    });
    return this.handle;
  }
}

/** The offset just after the last newline before `size` (0 when there is none). */
async function lastLineEnd(file: FileHandle, size: number): Promise<number> {
  for (let end = size; end > 0;) {
    const start = Math.max(0, end - CHUNK);
    const buffer = Buffer.alloc(end - start);
    await file.read(buffer, 0, buffer.length, start);
    const i = buffer.lastIndexOf(NEWLINE);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/**
 * The records of the file's whole lines before `end` (a line boundary), last first, each with the offset just past
 * its line (an unreadable line is skipped).
 */
async function* readBackwards(file: FileHandle, end: number): AsyncGenerator<{ record: AuditRecord; lineEnd: number }> {
  // `tail` holds the start of the file's part after `pos` that is not yet split into lines (a line cut by a chunk).
  let tail = Buffer.alloc(0);
  for (let pos = end; pos > 0 || tail.length > 0;) {
    const start = Math.max(0, pos - CHUNK);
    const chunk = Buffer.alloc(pos - start);
    await file.read(chunk, 0, chunk.length, start);
    const buffer = tail.length > 0 ? Buffer.concat([chunk, tail]) : chunk;
    // `lineEnd` is just past the newline of the line being cut out.
    let lineEnd = buffer.length;
    for (;;) {
      const previous = lineEnd >= 2 ? buffer.lastIndexOf(NEWLINE, lineEnd - 2) : -1;
      if (previous < 0 && start > 0) break; // the line starts in an earlier chunk
      const lineStart = previous + 1;
      if (lineEnd > lineStart) {
        const record = parseLine(buffer.toString('utf8', lineStart, lineEnd));
        if (record) yield { record, lineEnd: start + lineEnd };
      }
      lineEnd = lineStart;
      if (lineStart === 0) break;
    }
    tail = buffer.subarray(0, lineEnd);
    pos = start;
    if (start === 0) break;
  }
}

function parseLine(line: string): AuditRecord | undefined {
  try {
    const parsed = auditRecordSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
