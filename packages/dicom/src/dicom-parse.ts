/**
 * A small, strict DICOM Part-10 reader for uncompressed little-endian files (Explicit and Implicit VR).
 *
 * Why not dcmjs here: reading a series into a volume is the hot path of the AI worker, and this reader walks
 * the elements once, returns pixel data as a view (no copy) and checks every length against the bytes that
 * remain, so a truncated or corrupted file fails with a {@link DicomParseError} naming the element and offset,
 * never a crash, an endless loop or a silent wrong answer. dcmjs is used for writing. Spec: DICOM PS3.10 §7,
 * PS3.5 §7.1 (data elements), §7.5 (sequences).
 * @packageDocumentation
 */
import { DicomParseError } from './dicom-errors.js';

/** Explicit VR Little Endian. */
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Implicit VR Little Endian. */
export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';

/** One data element: where its value lies in the input. */
export interface DicomElement {
  /** Tag as `(group << 16) | element`, unsigned. */
  tag: number;
  /** Value representation (from the file, or the dictionary for Implicit VR; `UN` when unknown). */
  vr: string;
  /** Byte offset of the value in the input. */
  offset: number;
  /** Value length in bytes (0 for a sequence of undefined length; see `items`). */
  length: number;
  /** Items of a sequence (SQ). */
  items?: DicomDataset[];
}

/** A dataset: elements by tag. */
export type DicomDataset = Map<number, DicomElement>;

/** A parsed Part-10 file. */
export interface ParsedDicom {
  /** The input bytes (values are read from here). */
  bytes: Uint8Array;
  /** Transfer Syntax UID from the file meta information. */
  transferSyntaxUid: string;
  /** File meta information (group 0002). */
  meta: DicomDataset;
  /** The dataset. */
  dataset: DicomDataset;
}

/** Options of {@link parseDicom}. */
export interface ParseDicomOptions {
  /** Names the input in error messages (a file name or an index; never patient data). */
  source?: string;
  /**
   * The whole file's length when `bytes` is only its beginning (a header prefix of a file received in pieces).
   * Then a top-level PixelData element may run past `bytes` (up to this length) and ends the parse; any other
   * element must lie within `bytes`.
   */
  totalLength?: number;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const VALID_VRS = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
]);
const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQ_END = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const MAX_DEPTH = 16;

/** VRs of the tags we read, for Implicit VR files (PS3.6). Unknown tags become UN, sequences are found by undefined length. */
const IMPLICIT_VR: ReadonlyMap<number, string> = new Map([
  [0x00080016, 'UI'],
  [0x00080018, 'UI'],
  [0x00080060, 'CS'],
  [0x0008103e, 'LO'],
  [0x00100020, 'LO'],
  [0x0020000d, 'UI'],
  [0x0020000e, 'UI'],
  [0x00200011, 'IS'],
  [0x00200013, 'IS'],
  [0x00200032, 'DS'],
  [0x00200037, 'DS'],
  [0x00200052, 'UI'],
  [0x00180050, 'DS'],
  [0x00180088, 'DS'],
  [0x00280002, 'US'],
  [0x00280004, 'CS'],
  [0x00280008, 'IS'],
  [0x00280010, 'US'],
  [0x00280011, 'US'],
  [0x00280030, 'DS'],
  [0x00280100, 'US'],
  [0x00280101, 'US'],
  [0x00280102, 'US'],
  [0x00280103, 'US'],
  [0x00281052, 'DS'],
  [0x00281053, 'DS'],
  [0x7fe00010, 'OW'],
  [0x00620002, 'SQ'],
  [0x00620004, 'US'],
  [0x00620005, 'LO'],
  [0x00620008, 'CS'],
  [0x0062000b, 'US'],
  [0x0062000a, 'SQ'],
  [0x00620001, 'CS'],
  [0x52009229, 'SQ'],
  [0x52009230, 'SQ'],
  [0x00209113, 'SQ'],
  [0x00209116, 'SQ'],
  [0x00289110, 'SQ'],
  [0x00209111, 'SQ'],
  [0x00209157, 'UL'],
  [0x00089207, 'CS'],
  [0x00080100, 'SH'],
  [0x00080102, 'SH'],
  [0x00080104, 'LO'],
  [0x00620003, 'SQ'],
  [0x0062000f, 'SQ'],
  [0x00180020, 'CS'],
  [0x00180021, 'CS'],
  [0x00180024, 'SH'],
  [0x00180010, 'LO'],
  [0x00180081, 'DS'],
  [0x00180082, 'DS'],
  [0x00180080, 'DS'],
]);

/**
 * Formats a tag as `(gggg,eeee)`.
 * @param tag - `(group << 16) | element`
 */
export function tagString(tag: number): string {
  const h = (tag >>> 0).toString(16).padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly source: string | undefined,
    /** End of the whole file, when `bytes` is a prefix of it (see ParseDicomOptions.totalLength). */
    readonly totalLength: number = bytes.length,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(message: string, offset: number): never {
    throw new DicomParseError(message, { offset, ...(this.source === undefined ? {} : { source: this.source }) });
  }
  u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  tag(at: number): number {
    return ((this.u16(at) << 16) | this.u16(at + 2)) >>> 0;
  }

  /**
   * Reads elements from `pos` until `end`, or (when `stopAtItemEnd`) until an item delimiter.
   * @returns the dataset and the position after it (after the delimiter, if any)
   */
  dataset(
    pos: number,
    end: number,
    explicit: boolean,
    depth: number,
    delimited: boolean,
  ): { ds: DicomDataset; pos: number } {
    if (depth > MAX_DEPTH) this.fail(`sequences nested deeper than ${MAX_DEPTH}`, pos);
    const ds: DicomDataset = new Map();
    let last = -1;
    while (pos < end) {
      if (end - pos < 8) this.fail(`truncated element header: ${end - pos} byte(s) left, 8 needed`, pos);
      const tag = this.tag(pos);
      if (tag === ITEM_END) {
        if (!delimited) this.fail('item delimiter outside an item of undefined length', pos);
        return { ds, pos: pos + 8 };
      }
      if (tag === ITEM || tag === SEQ_END) this.fail(`unexpected ${tagString(tag)} delimiter in a dataset`, pos);
      if (tag <= last)
        this.fail(`element ${tagString(tag)} out of order (after ${tagString(last)}): corrupted data`, pos);
      last = tag;
      let vr: string;
      let length: number;
      let valuePos: number;
      if (explicit) {
        vr = String.fromCharCode(this.bytes[pos + 4] as number, this.bytes[pos + 5] as number);
        if (!VALID_VRS.has(vr))
          this.fail(`invalid VR "${printable(vr)}" for element ${tagString(tag)}: corrupted data`, pos + 4);
        if (LONG_VRS.has(vr)) {
          if (end - pos < 12) this.fail(`truncated element header of ${tagString(tag)}`, pos);
          length = this.u32(pos + 8);
          valuePos = pos + 12;
        } else {
          length = this.u16(pos + 6);
          valuePos = pos + 8;
        }
      } else {
        length = this.u32(pos + 4);
        valuePos = pos + 8;
        vr = IMPLICIT_VR.get(tag) ?? (length === UNDEFINED ? 'SQ' : 'UN');
        if ((tag & 0xffff) === 0) vr = 'UL';
      }
      if (length === UNDEFINED) {
        if (tag === PIXEL_DATA)
          this.fail(
            'encapsulated (compressed) pixel data is not supported; ask for an uncompressed transfer syntax',
            pos,
          );
        if (vr !== 'SQ' && vr !== 'UN')
          this.fail(`undefined length on a non-sequence element ${tagString(tag)} (${vr})`, pos);
        const seq = this.sequence(valuePos, end, UNDEFINED, explicit, depth + 1, tag);
        ds.set(tag, { tag, vr: 'SQ', offset: valuePos, length: 0, items: seq.items });
        pos = seq.pos;
        continue;
      }
      if (
        length > end - valuePos &&
        depth === 0 &&
        tag === PIXEL_DATA &&
        end === this.bytes.length &&
        valuePos + length <= this.totalLength
      ) {
        // A prefix of the file: the pixel data continues in the bytes not given here.
        ds.set(tag, { tag, vr, offset: valuePos, length });
        return { ds, pos: end };
      }
      if (length > end - valuePos) {
        this.fail(
          `element ${tagString(tag)} (${vr}) claims ${length} bytes but only ${end - valuePos} remain: file truncated or corrupted`,
          pos,
        );
      }
      if (vr === 'SQ') {
        const seq = this.sequence(valuePos, valuePos + length, length, explicit, depth + 1, tag);
        ds.set(tag, { tag, vr, offset: valuePos, length, items: seq.items });
      } else {
        ds.set(tag, { tag, vr, offset: valuePos, length });
      }
      pos = valuePos + length;
    }
    if (delimited) this.fail('item of undefined length has no item delimiter: file truncated', pos);
    return { ds, pos };
  }

  sequence(
    pos: number,
    end: number,
    length: number,
    explicit: boolean,
    depth: number,
    owner: number,
  ): { items: DicomDataset[]; pos: number } {
    const items: DicomDataset[] = [];
    const limit = length === UNDEFINED ? end : pos + length;
    while (pos < limit) {
      if (limit - pos < 8) this.fail(`truncated item header in sequence ${tagString(owner)}`, pos);
      const tag = this.tag(pos);
      const itemLength = this.u32(pos + 4);
      if (tag === SEQ_END) {
        if (length !== UNDEFINED)
          this.fail(`sequence delimiter inside defined-length sequence ${tagString(owner)}`, pos);
        return { items, pos: pos + 8 };
      }
      if (tag !== ITEM)
        this.fail(`expected an item in sequence ${tagString(owner)}, found ${tagString(tag)}: corrupted data`, pos);
      if (itemLength === UNDEFINED) {
        const r = this.dataset(pos + 8, limit, explicit, depth, true);
        items.push(r.ds);
        pos = r.pos;
      } else {
        if (itemLength > limit - pos - 8)
          this.fail(`item of ${tagString(owner)} claims ${itemLength} bytes but only ${limit - pos - 8} remain`, pos);
        items.push(this.dataset(pos + 8, pos + 8 + itemLength, explicit, depth, false).ds);
        pos = pos + 8 + itemLength;
      }
    }
    if (length === UNDEFINED) this.fail(`sequence ${tagString(owner)} has no sequence delimiter: file truncated`, pos);
    return { items, pos };
  }
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * Parses a DICOM Part-10 file (128-byte preamble, `DICM`, file meta information, dataset) in Explicit or
 * Implicit VR Little Endian. Values are not decoded: use {@link getString}, {@link getNumbers},
 * {@link getUint16} and {@link getBytes}.
 * @param bytes - the whole file
 * @param options - `source` names the input in errors
 * @returns the meta information, the dataset and the transfer syntax
 * @throws {@link DicomParseError} for anything that is not a well-formed file of a supported transfer syntax
 */
export function parseDicom(bytes: Uint8Array, options: ParseDicomOptions = {}): ParsedDicom {
  const r: Reader = new Reader(bytes, options.source, Math.max(bytes.length, options.totalLength ?? bytes.length));
  if (bytes.length < 132)
    r.fail(`not a DICOM Part-10 file: ${bytes.length} bytes, too short for the preamble and DICM prefix`, 0);
  if (bytes[128] !== 0x44 || bytes[129] !== 0x49 || bytes[130] !== 0x43 || bytes[131] !== 0x4d) {
    r.fail('not a DICOM Part-10 file: no "DICM" prefix at byte 128', 128);
  }
  // File meta information: explicit VR LE, group 0002. Its length is in (0002,0000), but we walk the group
  // element by element so that a wrong group length is caught rather than trusted.
  let pos = 132;
  const meta: DicomDataset = new Map();
  while (pos + 8 <= bytes.length && r.u16(pos) === 0x0002) {
    const part = r.dataset(pos, Math.min(bytes.length, pos + headerSpan(r, pos)), true, 0, false);
    for (const [k, v] of part.ds) meta.set(k, v);
    pos = part.pos;
  }
  const tsEl = meta.get(0x00020010);
  if (!tsEl) r.fail('file meta information has no Transfer Syntax UID (0002,0010)', 132);
  const parsedMeta: ParsedDicom = { bytes, transferSyntaxUid: '', meta, dataset: new Map() };
  const ts = getString(parsedMeta, tsEl) ?? '';
  if (ts !== EXPLICIT_VR_LITTLE_ENDIAN && ts !== IMPLICIT_VR_LITTLE_ENDIAN) {
    r.fail(
      `unsupported transfer syntax ${printable(ts)}: only uncompressed little endian (1.2.840.10008.1.2 and .1.2.1) is read`,
      tsEl.offset,
    );
  }
  if (pos >= bytes.length) r.fail('file has no dataset after the file meta information: truncated', pos);
  const { ds } = r.dataset(pos, bytes.length, ts === EXPLICIT_VR_LITTLE_ENDIAN, 0, false);
  return { bytes, transferSyntaxUid: ts, meta, dataset: ds };
}

/** Size of one meta element (header + value), bounded by the input; the reader re-checks it. */
function headerSpan(r: Reader, pos: number): number {
  const vr = String.fromCharCode(r.bytes[pos + 4] as number, r.bytes[pos + 5] as number);
  if (LONG_VRS.has(vr)) {
    if (pos + 12 > r.bytes.length) return r.bytes.length - pos;
    return 12 + r.u32(pos + 8);
  }
  return 8 + r.u16(pos + 6);
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

/**
 * Reads a text value (trailing spaces and NULs removed). `undefined` when absent.
 * @param file - the parsed file (for its bytes)
 * @param el - the element, or undefined
 * @returns the string value
 */
export function getString(file: Pick<ParsedDicom, 'bytes'>, el: DicomElement | undefined): string | undefined {
  if (!el) return undefined;
  const raw = file.bytes.subarray(el.offset, el.offset + el.length);
  const text =
    el.vr === 'UN' || el.vr === 'UT' || el.vr === 'UC' || el.vr === 'LO' || el.vr === 'PN'
      ? utf8.decode(raw)
      : latin1.decode(raw);
  return text.replace(/[\0 ]+$/, '').replace(/^ +/, '');
}

/**
 * Reads a multi-valued numeric string (DS or IS) as numbers.
 * @param file - the parsed file
 * @param el - the element
 * @param what - attribute name for the error message
 * @returns numbers, or undefined when the element is absent or empty
 * @throws {@link DicomParseError} when a value is not a finite number
 */
export function getNumbers(
  file: Pick<ParsedDicom, 'bytes'>,
  el: DicomElement | undefined,
  what: string,
): number[] | undefined {
  const s = getString(file, el);
  if (s === undefined || s === '') return undefined;
  return s.split('\\').map((part) => {
    const v = Number(part.trim());
    if (part.trim() === '' || !Number.isFinite(v))
      throw new DicomParseError(`${what} has a non-numeric value "${printable(part).slice(0, 32)}"`);
    return v;
  });
}

/**
 * Reads a US (unsigned short) value.
 * @param file - the parsed file
 * @param el - the element
 * @returns the first value, or undefined when absent
 */
export function getUint16(file: Pick<ParsedDicom, 'bytes'>, el: DicomElement | undefined): number | undefined {
  if (!el || el.length < 2) return undefined;
  return new DataView(file.bytes.buffer, file.bytes.byteOffset + el.offset, 2).getUint16(0, true);
}

/**
 * Reads a UL value.
 * @param file - the parsed file
 * @param el - the element
 * @returns the first value, or undefined when absent
 */
export function getUint32(file: Pick<ParsedDicom, 'bytes'>, el: DicomElement | undefined): number | undefined {
  if (!el || el.length < 4) return undefined;
  return new DataView(file.bytes.buffer, file.bytes.byteOffset + el.offset, 4).getUint32(0, true);
}

/**
 * The raw value bytes of an element, as a view into the input (no copy).
 * @param file - the parsed file
 * @param el - the element
 * @returns the bytes, or undefined when absent
 */
export function getBytes(file: Pick<ParsedDicom, 'bytes'>, el: DicomElement | undefined): Uint8Array | undefined {
  if (!el) return undefined;
  return file.bytes.subarray(el.offset, el.offset + el.length);
}
