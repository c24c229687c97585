/**
 * DICOM keyword ↔ tag lookups for the store emulator (dcmjs's PS3.6 dictionary).
 * @packageDocumentation
 */
import dcmjs from 'dcmjs';

interface DictEntry {
  tag: string;
  vr: string;
  name: string;
}

const dictionary = (
  dcmjs as {
    data: {
      DicomMetaDictionary: {
        dictionary: Record<string, DictEntry | undefined>;
        nameMap: Record<string, DictEntry | undefined>;
      };
    };
  }
).data.DicomMetaDictionary;

/**
 * The keyword of a tag, e.g. `0x00080018` → `SOPInstanceUID`.
 * @param tag - `(group << 16) | element`
 * @returns the keyword, or undefined for private/unknown tags
 */
export function keywordOf(tag: number): string | undefined {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return dictionary.dictionary[`(${h.slice(0, 4)},${h.slice(4)})`]?.name;
}

/**
 * The tag of a keyword or of an 8-hex-digit tag string.
 * @param key - `StudyInstanceUID` or `0020000D`
 * @returns the tag number, or undefined when unknown
 */
export function tagOf(key: string): number | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) return Number.parseInt(key, 16) >>> 0;
  const t = dictionary.nameMap[key]?.tag;
  if (!t) return undefined;
  return Number.parseInt(t.replace(/[(),]/g, ''), 16) >>> 0;
}

/**
 * The dictionary VR of a tag (for Implicit VR files).
 * @param tag - the tag
 */
export function vrOf(tag: number): string | undefined {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return dictionary.dictionary[`(${h.slice(0, 4)},${h.slice(4)})`]?.vr;
}

/** 8 upper-case hex digits, as DICOM JSON keys are written. */
export function hex8(tag: number): string {
  return (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
}
