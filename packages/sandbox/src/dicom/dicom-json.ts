/**
 * Part-10 datasets → DICOM JSON (PS3.18 F.2) and Orthanc's simplified tags, for the store emulator.
 * @packageDocumentation
 */
import { getBytes, getString, type DicomDataset, type DicomElement, type ParsedDicom } from '@cdss/dicom';
import { hex8, keywordOf, vrOf } from './dictionary.js';

/** A DICOM JSON attribute. */
export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
/** A DICOM JSON dataset. */
export type JsonDataset = Record<string, JsonAttribute>;

const BINARY_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);
const TEXT_SINGLE = new Set(['LT', 'ST', 'UT', 'UR']);

function numbers(file: ParsedDicom, el: DicomElement, vr: string): number[] {
  const view = new DataView(file.bytes.buffer, file.bytes.byteOffset + el.offset, el.length);
  const out: number[] = [];
  const size = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8, AT: 4 }[vr] ?? 1;
  for (let o = 0; o + size <= el.length; o += size) {
    switch (vr) {
      case 'US':
        out.push(view.getUint16(o, true));
        break;
      case 'SS':
        out.push(view.getInt16(o, true));
        break;
      case 'UL':
        out.push(view.getUint32(o, true));
        break;
      case 'SL':
        out.push(view.getInt32(o, true));
        break;
      case 'FL':
        out.push(view.getFloat32(o, true));
        break;
      case 'FD':
        out.push(view.getFloat64(o, true));
        break;
      case 'SV':
        out.push(Number(view.getBigInt64(o, true)));
        break;
      case 'UV':
        out.push(Number(view.getBigUint64(o, true)));
        break;
      default:
        break;
    }
  }
  return out;
}

/**
 * Converts a dataset to DICOM JSON. Bulk data (pixel data, other binary values over 1 KiB) becomes a
 * BulkDataURI under `bulkBase` when given, else InlineBinary.
 * @param file - the parsed file (bytes)
 * @param ds - the dataset (or an item)
 * @param bulkBase - URL prefix for bulk data, e.g. the instance's WADO-RS URL
 */
export function toDicomJson(file: ParsedDicom, ds: DicomDataset, bulkBase?: string): JsonDataset {
  const out: JsonDataset = {};
  for (const el of ds.values()) {
    if ((el.tag & 0xffff) === 0 || el.tag >>> 16 === 0x0002) continue;
    const vr = el.vr === 'UN' ? (vrOf(el.tag) ?? 'UN') : el.vr;
    const key = hex8(el.tag);
    if (vr === 'SQ' || el.items) {
      out[key] = { vr: 'SQ', Value: (el.items ?? []).map((item) => toDicomJson(file, item, undefined)) };
      continue;
    }
    if (BINARY_VRS.has(vr.split('|')[0] ?? vr) || vr.includes('|')) {
      if (bulkBase && (el.tag === 0x7fe00010 || el.length > 1024))
        out[key] = { vr: vr.includes('|') ? 'OW' : vr, BulkDataURI: `${bulkBase}/bulk/${key}` };
      else
        out[key] = {
          vr: vr.includes('|') ? 'OW' : vr,
          InlineBinary: Buffer.from(getBytes(file, el) ?? new Uint8Array()).toString('base64'),
        };
      continue;
    }
    if (['US', 'SS', 'UL', 'SL', 'FL', 'FD', 'SV', 'UV'].includes(vr)) {
      const v = numbers(file, el, vr);
      out[key] = v.length ? { vr, Value: v } : { vr };
      continue;
    }
    if (vr === 'AT') {
      const view = new DataView(file.bytes.buffer, file.bytes.byteOffset + el.offset, el.length);
      const v: string[] = [];
      for (let o = 0; o + 4 <= el.length; o += 4)
        v.push(hex8(((view.getUint16(o, true) << 16) | view.getUint16(o + 2, true)) >>> 0));
      out[key] = v.length ? { vr, Value: v } : { vr };
      continue;
    }
    const s = getString(file, el) ?? '';
    if (s === '') {
      out[key] = { vr };
      continue;
    }
    const parts = TEXT_SINGLE.has(vr) ? [s] : s.split('\\').map((p) => p.trim());
    if (vr === 'PN')
      out[key] = { vr, Value: parts.map((p) => (p === '' ? null : { Alphabetic: p.split('=')[0] ?? p })) };
    else if (vr === 'DS' || vr === 'IS') out[key] = { vr, Value: parts.map((p) => (p === '' ? null : Number(p))) };
    else out[key] = { vr, Value: parts };
  }
  return out;
}

/** A simplified-tags value: strings, nested objects for sequences, null for binary. */
export type SimplifiedValue = string | null | Array<Record<string, SimplifiedValue>>;

/**
 * Orthanc's `simplified-tags`: keyword → string (multi-values joined by `\`), sequences as arrays, binary null.
 * @param file - the parsed file
 * @param ds - the dataset
 */
export function toSimplifiedTags(file: ParsedDicom, ds: DicomDataset): Record<string, SimplifiedValue> {
  const out: Record<string, SimplifiedValue> = {};
  for (const el of ds.values()) {
    if ((el.tag & 0xffff) === 0 || el.tag >>> 16 === 0x0002) continue;
    const key =
      keywordOf(el.tag) ??
      hex8(el.tag)
        .replace(/^(....)(....)$/, '$1,$2')
        .toLowerCase();
    const vr = el.vr === 'UN' ? (vrOf(el.tag) ?? 'UN') : el.vr;
    if (el.items) out[key] = el.items.map((item) => toSimplifiedTags(file, item));
    else if (BINARY_VRS.has(vr) || vr.includes('|')) out[key] = null;
    else if (['US', 'SS', 'UL', 'SL', 'FL', 'FD'].includes(vr)) out[key] = numbers(file, el, vr).join('\\');
    else out[key] = getString(file, el) ?? '';
  }
  return out;
}
