/**
 * Building a {@link Volume} from the slices of a DICOM series.
 *
 * Slices are sorted along the slice normal (row direction × column direction of ImageOrientationPatient) by the
 * projection of ImagePositionPatient, as PS3.3 C.7.6.2.1.1 defines the geometry; InstanceNumber is not trusted.
 * A gap of a whole number of steps is reported as missing slices; any other irregular spacing, two slices at
 * one position, slices that disagree in size/orientation/pixel format, or positions that drift off the normal
 * are reported as {@link SeriesGeometryError}s. Rescale slope/intercept are applied (PS3.3 C.11.1.1.2).
 * @packageDocumentation
 */
import { DicomParseError, SeriesGeometryError } from './dicom-errors.js';
import { getBytes, getNumbers, getString, getUint16, parseDicom, type ParsedDicom } from './dicom-parse.js';
import type { Mat3, Vec3, Volume } from './volume.js';
import type { VoxelBufferPool } from './voxel-pool.js';

/** What volume building needs of one slice (one frame of a single-frame image). */
export interface DicomSlice {
  /** SOP Instance UID. */
  sopInstanceUid: string;
  /** Series Instance UID. */
  seriesInstanceUid: string;
  /** Frame of Reference UID, when present. */
  frameOfReferenceUid?: string | undefined;
  /** Instance Number, when present (only used in messages). */
  instanceNumber?: number | undefined;
  /** Rows (j). */
  rows: number;
  /** Columns (i). */
  columns: number;
  /** Pixel Spacing: [between rows (mm), between columns (mm)]. */
  pixelSpacing: [number, number];
  /** Image Position (Patient): centre of the first voxel, mm. */
  imagePositionPatient: Vec3;
  /** Image Orientation (Patient): row direction then column direction. */
  imageOrientationPatient: [number, number, number, number, number, number];
  /** Bits Allocated: 8 or 16. */
  bitsAllocated: number;
  /** Bits Stored. */
  bitsStored: number;
  /** Pixel Representation: 0 unsigned, 1 two's complement. */
  pixelRepresentation: number;
  /** Rescale Slope (default 1). */
  rescaleSlope: number;
  /** Rescale Intercept (default 0). */
  rescaleIntercept: number;
  /** Spacing Between Slices, used for a one-slice series. */
  spacingBetweenSlices?: number | undefined;
  /** Slice Thickness, the fallback for a one-slice series. */
  sliceThickness?: number | undefined;
  /**
   * The frame's pixel bytes, little endian, rows × columns × bitsAllocated/8: one array, or consecutive pieces
   * (views into received network chunks, so that a volume is assembled with a single copy).
   */
  pixels: Uint8Array | readonly Uint8Array[];
}

const T = {
  SOPInstanceUID: 0x00080018,
  SeriesInstanceUID: 0x0020000e,
  FrameOfReferenceUID: 0x00200052,
  InstanceNumber: 0x00200013,
  ImagePositionPatient: 0x00200032,
  ImageOrientationPatient: 0x00200037,
  SliceThickness: 0x00180050,
  SpacingBetweenSlices: 0x00180088,
  SamplesPerPixel: 0x00280002,
  PhotometricInterpretation: 0x00280004,
  NumberOfFrames: 0x00280008,
  Rows: 0x00280010,
  Columns: 0x00280011,
  PixelSpacing: 0x00280030,
  BitsAllocated: 0x00280100,
  BitsStored: 0x00280101,
  PixelRepresentation: 0x00280103,
  RescaleIntercept: 0x00281052,
  RescaleSlope: 0x00281053,
  PixelData: 0x7fe00010,
} as const;

function need<V>(value: V | undefined, what: string, source: string | undefined): V {
  if (value === undefined)
    throw new DicomParseError(`missing required attribute ${what}`, source === undefined ? {} : { source });
  return value;
}

function vecOf<N extends number>(v: number[] | undefined, n: N, what: string, source: string | undefined): number[] {
  const got = need(v, what, source);
  if (got.length !== n)
    throw new DicomParseError(
      `${what} has ${got.length} values, expected ${n}`,
      source === undefined ? {} : { source },
    );
  return got;
}

/**
 * Reads the slice of a single-frame image from a parsed Part-10 file.
 * @param file - from {@link parseDicom}
 * @param source - names the input in errors
 * @returns the slice; its pixels are a view into the file's bytes
 * @throws {@link DicomParseError} when a required attribute is missing or malformed, or the pixel format is unsupported
 */
export function sliceFromParsed(file: ParsedDicom, source?: string, pixelsElsewhere = false): DicomSlice {
  const ds = file.dataset;
  const num = (tag: number, what: string): number[] | undefined => {
    try {
      return getNumbers(file, ds.get(tag), what);
    } catch (error) {
      throw new DicomParseError(
        error instanceof Error ? error.message : String(error),
        source === undefined ? {} : { source },
      );
    }
  };
  const err = (message: string): DicomParseError =>
    new DicomParseError(message, source === undefined ? {} : { source });
  const rows = need(getUint16(file, ds.get(T.Rows)), 'Rows (0028,0010)', source);
  const columns = need(getUint16(file, ds.get(T.Columns)), 'Columns (0028,0011)', source);
  const bitsAllocated = need(getUint16(file, ds.get(T.BitsAllocated)), 'BitsAllocated (0028,0100)', source);
  const bitsStored = getUint16(file, ds.get(T.BitsStored)) ?? bitsAllocated;
  const pixelRepresentation = getUint16(file, ds.get(T.PixelRepresentation)) ?? 0;
  const samples = getUint16(file, ds.get(T.SamplesPerPixel)) ?? 1;
  const frames = num(T.NumberOfFrames, 'NumberOfFrames (0028,0008)')?.[0] ?? 1;
  if (rows === 0 || columns === 0) throw err('Rows and Columns must be positive');
  if (samples !== 1) throw err(`SamplesPerPixel ${samples} is not supported: volumes are greyscale`);
  if (frames !== 1) throw err(`NumberOfFrames ${frames}: multi-frame images are not read as slices`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16)
    throw err(`BitsAllocated ${bitsAllocated} is not supported (8 or 16)`);
  if (bitsStored < 1 || bitsStored > bitsAllocated)
    throw err(`BitsStored ${bitsStored} does not fit BitsAllocated ${bitsAllocated}`);
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1)
    throw err(`PixelRepresentation ${pixelRepresentation} is invalid`);
  const photometric = getString(file, ds.get(T.PhotometricInterpretation));
  if (photometric !== undefined && photometric !== 'MONOCHROME2' && photometric !== 'MONOCHROME1') {
    throw err(`PhotometricInterpretation ${photometric.slice(0, 16)} is not supported: volumes are greyscale`);
  }
  const pixels = need(getBytes(file, ds.get(T.PixelData)), 'PixelData (7FE0,0010)', source);
  const expected = rows * columns * (bitsAllocated / 8);
  if (!pixelsElsewhere && pixels.length < expected)
    throw err(
      `PixelData has ${pixels.length} bytes, expected ${expected} for ${rows}×${columns}×${bitsAllocated} bits`,
    );
  const ipp = vecOf(
    num(T.ImagePositionPatient, 'ImagePositionPatient (0020,0032)'),
    3,
    'ImagePositionPatient (0020,0032)',
    source,
  );
  const iop = vecOf(
    num(T.ImageOrientationPatient, 'ImageOrientationPatient (0020,0037)'),
    6,
    'ImageOrientationPatient (0020,0037)',
    source,
  );
  const ps = vecOf(num(T.PixelSpacing, 'PixelSpacing (0028,0030)'), 2, 'PixelSpacing (0028,0030)', source);
  if (!(ps[0]! > 0 && ps[1]! > 0)) throw err('PixelSpacing must be positive');
  const slope = num(T.RescaleSlope, 'RescaleSlope (0028,1053)')?.[0] ?? 1;
  const intercept = num(T.RescaleIntercept, 'RescaleIntercept (0028,1052)')?.[0] ?? 0;
  if (slope === 0) throw err('RescaleSlope is 0');
  const instanceNumber = num(T.InstanceNumber, 'InstanceNumber (0020,0013)')?.[0];
  return {
    sopInstanceUid: need(getString(file, ds.get(T.SOPInstanceUID)), 'SOPInstanceUID (0008,0018)', source),
    seriesInstanceUid: need(getString(file, ds.get(T.SeriesInstanceUID)), 'SeriesInstanceUID (0020,000E)', source),
    frameOfReferenceUid: getString(file, ds.get(T.FrameOfReferenceUID)),
    instanceNumber,
    rows,
    columns,
    pixelSpacing: [ps[0]!, ps[1]!],
    imagePositionPatient: [ipp[0]!, ipp[1]!, ipp[2]!],
    imageOrientationPatient: [iop[0]!, iop[1]!, iop[2]!, iop[3]!, iop[4]!, iop[5]!],
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    rescaleSlope: slope,
    rescaleIntercept: intercept,
    spacingBetweenSlices: num(T.SpacingBetweenSlices, 'SpacingBetweenSlices (0018,0088)')?.[0],
    sliceThickness: num(T.SliceThickness, 'SliceThickness (0018,0050)')?.[0],
    pixels: pixelsElsewhere ? pixels : pixels.subarray(0, expected),
  };
}

/**
 * Parses a Part-10 file and reads its slice.
 * @param bytes - the file
 * @param source - names the input in errors (e.g. a file name)
 * @returns the slice
 * @throws {@link DicomParseError} for a file that is not a readable single-frame greyscale image
 */
export function sliceFromPart10(bytes: Uint8Array, source?: string): DicomSlice {
  return sliceFromParsed(parseDicom(bytes, source === undefined ? {} : { source }), source);
}

/** What {@link sliceHead} reads from the beginning of a Part-10 file. */
export interface SliceHead {
  /** The slice's attributes; its `pixels` is empty (the pixel bytes are at `pixelOffset` in the file). */
  slice: DicomSlice;
  /** Offset of the pixel data's first byte in the file. */
  pixelOffset: number;
  /** Bytes of pixel data the slice needs (rows × columns × bytes per voxel). */
  pixelBytes: number;
}

/**
 * Reads a slice's attributes from the beginning of its Part-10 file, for files that arrive in pieces: the pixel
 * data need not be there yet, only its element header.
 * @param head - the first bytes of the file
 * @param totalLength - the whole file's length (`Infinity` when unknown)
 * @param source - names the input in errors
 * @returns the attributes and where the pixel data starts, or `undefined` when `head` ends before the pixel data
 *   element (read more and call again)
 * @throws {@link DicomParseError} for a file that is not a readable single-frame greyscale image (as far as `head`
 *   tells; when `head` is the whole file, exactly as {@link sliceFromPart10})
 */
export function sliceHead(head: Uint8Array, totalLength: number, source?: string): SliceHead | undefined {
  const whole = head.length >= totalLength;
  if (whole) {
    const slice = sliceFromPart10(head, source);
    const pixels = slice.pixels as Uint8Array;
    return {
      slice: { ...slice, pixels: EMPTY },
      pixelOffset: pixels.byteOffset - head.byteOffset,
      pixelBytes: pixels.length,
    };
  }
  const opts = source === undefined ? {} : { source };
  let parsed: ParsedDicom;
  try {
    parsed = parseDicom(head, { ...opts, totalLength });
  } catch {
    // the prefix ends inside an element before the pixel data, or the file is malformed: more bytes tell which
    return undefined;
  }
  const pixelEl = parsed.dataset.get(T.PixelData);
  // the prefix ended on an element boundary before the pixel data, or holds all of it (parse the whole file then)
  if (!pixelEl || pixelEl.offset + pixelEl.length <= head.length) return undefined;
  // The pixel data runs past the prefix: its length is checked against the slice's size below.
  const slice = sliceFromParsed(parsed, source, true);
  const pixelBytes = slice.rows * slice.columns * (slice.bitsAllocated / 8);
  if (pixelEl.length < pixelBytes) {
    throw new DicomParseError(`PixelData has ${pixelEl.length} bytes, expected ${pixelBytes}`, opts);
  }
  return { slice: { ...slice, pixels: EMPTY }, pixelOffset: pixelEl.offset, pixelBytes };
}

const EMPTY = new Uint8Array(0);

/** Options of {@link volumeFromSlices}. */
export interface VolumeFromSlicesOptions {
  /**
   * Allowed deviation of a slice step from the series' step, as a fraction of the step (default 0.01).
   * Beyond it the series is irregular: missing slices when the gap is a whole number of steps, else uneven.
   */
  spacingTolerance?: number;
  /** Output type: `auto` (default) keeps the stored integer type when slope is 1 and intercept 0, else float32. */
  output?: 'auto' | 'float32';
  /**
   * Where the voxel memory comes from: a pool's buffers are reused (the volume's `data` may then be a view on
   * the front of a larger buffer). Default: new memory.
   */
  pool?: VoxelBufferPool | undefined;
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}
function dot(a: Readonly<Vec3>, b: Readonly<Vec3>): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/**
 * Builds a volume from the slices of one series, in any order.
 * @param input - the slices (e.g. from {@link sliceFromPart10})
 * @param options - spacing tolerance and output type
 * @returns the volume, `k` increasing along the slice normal
 * @throws {@link SeriesGeometryError} with `problem` `empty`, `inconsistent`, `duplicate-position`,
 *   `missing-slice` (with `gaps`), `uneven-spacing` or `not-stacked`
 */
export function volumeFromSlices(input: readonly DicomSlice[], options: VolumeFromSlicesOptions = {}): Volume {
  return buildVolume(input, options, false);
}

/**
 * {@link volumeFromSlices}; with `adoptLaidOut`, slices whose pixels already lie in slice order, back to back from
 * the start of one buffer, become the volume without a copy (the volume then shares that buffer).
 * @internal
 */
export function buildVolume(
  input: readonly DicomSlice[],
  options: VolumeFromSlicesOptions,
  adoptLaidOut: boolean,
): Volume {
  if (input.length === 0) throw new SeriesGeometryError('empty', 'series has no slices');
  const first = input[0]!;
  const tol = options.spacingTolerance ?? 0.01;
  for (const s of input) {
    const what = (attr: string): never => {
      throw new SeriesGeometryError(
        'inconsistent',
        `slice ${s.sopInstanceUid} differs from slice ${first.sopInstanceUid} in ${attr}: not one volume`,
      );
    };
    if (s.seriesInstanceUid !== first.seriesInstanceUid) what('SeriesInstanceUID');
    if (s.rows !== first.rows || s.columns !== first.columns) what('Rows/Columns');
    if (
      s.bitsAllocated !== first.bitsAllocated ||
      s.pixelRepresentation !== first.pixelRepresentation ||
      s.bitsStored !== first.bitsStored
    ) {
      what('pixel format (BitsAllocated/BitsStored/PixelRepresentation)');
    }
    if (s.imageOrientationPatient.some((v, n) => Math.abs(v - first.imageOrientationPatient[n]!) > 1e-4))
      what('ImageOrientationPatient');
    if (s.pixelSpacing.some((v, n) => Math.abs(v - first.pixelSpacing[n]!) > 1e-4 * Math.max(1, v)))
      what('PixelSpacing');
    if ((s.frameOfReferenceUid ?? '') !== (first.frameOfReferenceUid ?? '')) what('FrameOfReferenceUID');
  }
  const iop = first.imageOrientationPatient;
  const rowDir: Vec3 = [iop[0], iop[1], iop[2]];
  const colDir: Vec3 = [iop[3], iop[4], iop[5]];
  const nr = Math.hypot(...rowDir);
  const nc = Math.hypot(...colDir);
  if (Math.abs(nr - 1) > 1e-3 || Math.abs(nc - 1) > 1e-3 || Math.abs(dot(rowDir, colDir)) > 1e-3) {
    throw new SeriesGeometryError('inconsistent', 'ImageOrientationPatient is not two orthogonal unit vectors');
  }
  const normal = cross(rowDir, colDir);
  const sorted = input.map((s) => ({ s, d: dot(s.imagePositionPatient, normal) })).sort((a, b) => a.d - b.d);
  const n = sorted.length;
  let step: number;
  if (n === 1) {
    step = first.spacingBetweenSlices ?? first.sliceThickness ?? 1;
    if (!(step > 0)) step = 1;
  } else {
    const steps: number[] = [];
    for (let k = 1; k < n; k++) {
      const a = sorted[k - 1]!;
      const b = sorted[k]!;
      const gap = b.d - a.d;
      if (gap < 1e-3) {
        throw new SeriesGeometryError(
          'duplicate-position',
          `slices ${a.s.sopInstanceUid} and ${b.s.sopInstanceUid} are at the same position (${a.d.toFixed(3)} mm along the normal)`,
        );
      }
      steps.push(gap);
    }
    // The series' step is the smallest gap that most gaps agree with: the median is robust to a few gaps.
    const ordered = [...steps].sort((a, b) => a - b);
    step = ordered[Math.floor((ordered.length - 1) / 2)]!;
    const declared = first.spacingBetweenSlices;
    if (
      declared !== undefined &&
      declared > 0 &&
      Math.abs(declared - step) > tol * declared &&
      ordered[0]! > declared * (1 - tol)
    ) {
      // Every gap is at least the declared spacing but the median is larger: most slices are missing.
      step = declared;
    }
    const gaps: Array<{ after: number; before: number; missing: number }> = [];
    let uneven: string | undefined;
    for (let k = 0; k < steps.length; k++) {
      const gap = steps[k]!;
      const ratio = gap / step;
      const whole = Math.round(ratio);
      if (Math.abs(ratio - 1) <= tol) continue;
      if (whole >= 2 && Math.abs(ratio - whole) <= tol * whole) {
        gaps.push({ after: sorted[k]!.d, before: sorted[k + 1]!.d, missing: whole - 1 });
      } else if (uneven === undefined) {
        uneven = `slice gap ${gap.toFixed(4)} mm between ${sorted[k]!.d.toFixed(3)} and ${sorted[k + 1]!.d.toFixed(3)} mm differs from the series step ${step.toFixed(4)} mm`;
      }
    }
    if (gaps.length > 0) {
      const count = gaps.reduce((s, g) => s + g.missing, 0);
      const where = gaps
        .map((g) => `${g.missing} between ${g.after.toFixed(3)} and ${g.before.toFixed(3)} mm`)
        .join('; ');
      throw new SeriesGeometryError(
        'missing-slice',
        `series ${first.seriesInstanceUid} is missing ${count} slice(s): ${where} (step ${step.toFixed(4)} mm)`,
        gaps,
      );
    }
    if (uneven !== undefined)
      throw new SeriesGeometryError(
        'uneven-spacing',
        `series ${first.seriesInstanceUid} has uneven slice spacing: ${uneven}`,
      );
    // Positions must move along the normal only (no gantry tilt / shear), else the grid is not rectilinear.
    const o = sorted[0]!.s.imagePositionPatient;
    for (let k = 1; k < n; k++) {
      const p = sorted[k]!.s.imagePositionPatient;
      const off = [
        p[0] - o[0] - normal[0] * step * k,
        p[1] - o[1] - normal[1] * step * k,
        p[2] - o[2] - normal[2] * step * k,
      ];
      if (Math.hypot(...off) > Math.max(tol * step * k, 1e-3) + 1e-3) {
        throw new SeriesGeometryError(
          'not-stacked',
          `slice ${sorted[k]!.s.sopInstanceUid} is ${Math.hypot(...off).toFixed(3)} mm off the slice normal (tilted or sheared series)`,
        );
      }
    }
  }

  const { rows, columns, bitsAllocated, bitsStored, pixelRepresentation } = first;
  const plane = rows * columns;
  const total = plane * n;
  const identity = sorted.every(({ s }) => s.rescaleSlope === 1 && s.rescaleIntercept === 0);
  const signed = pixelRepresentation === 1;
  const needsMask = bitsStored < bitsAllocated;
  let data: Volume['data'];
  if (identity && options.output !== 'float32') {
    const bpp = bitsAllocated / 8;
    const laidOut = adoptLaidOut
      ? laidOutBuffer(
          sorted.map(({ s }) => s.pixels),
          plane * bpp,
        )
      : undefined;
    // Every byte is overwritten below, so skip the zero-fill of a fresh typed array (tens of MB per series).
    const raw = laidOut ?? voxelMemory(total * bpp, options.pool);
    data =
      bitsAllocated === 16
        ? signed
          ? new Int16Array(raw, 0, total)
          : new Uint16Array(raw, 0, total)
        : signed
          ? new Int8Array(raw, 0, total)
          : new Uint8Array(raw, 0, total);
    const dst = new Uint8Array(raw, 0, total * bpp);
    if (!laidOut) sorted.forEach(({ s }, k) => copyPixels(s.pixels, dst, k * plane * bpp, plane * bpp));
    if (needsMask) maskStored(data, bitsStored, signed);
  } else {
    const out = new Float32Array(voxelMemory(total * 4, options.pool), 0, total);
    const tmp =
      bitsAllocated === 16
        ? signed
          ? new Int16Array(plane)
          : new Uint16Array(plane)
        : signed
          ? new Int8Array(plane)
          : new Uint8Array(plane);
    const tmpBytes = new Uint8Array(tmp.buffer);
    sorted.forEach(({ s }, k) => {
      copyPixels(s.pixels, tmpBytes, 0, tmpBytes.length);
      if (needsMask) maskStored(tmp, bitsStored, signed);
      const base = k * plane;
      for (let p = 0; p < plane; p++) out[base + p] = (tmp[p] as number) * s.rescaleSlope + s.rescaleIntercept;
    });
    data = out;
  }
  const direction: Mat3 = [...rowDir, ...colDir, ...normal];
  return {
    data,
    dims: [columns, rows, n],
    spacing: [first.pixelSpacing[1], first.pixelSpacing[0], step],
    origin: [...sorted[0]!.s.imagePositionPatient],
    direction,
  };
}

/**
 * The buffer under `pixels` when each is one view of it, the k-th at byte k·planeBytes, and the buffer is not far
 * larger than the slices (a small series must not keep a whole staging page alive).
 */
function laidOutBuffer(pixels: ReadonlyArray<DicomSlice['pixels']>, planeBytes: number): ArrayBuffer | undefined {
  const first = pixels[0];
  if (!(first instanceof Uint8Array) || !(first.buffer instanceof ArrayBuffer)) return undefined;
  const buffer = first.buffer;
  if (buffer.byteLength > 2 * pixels.length * planeBytes) return undefined;
  for (let k = 0; k < pixels.length; k++) {
    const p = pixels[k];
    if (!(p instanceof Uint8Array) || p.buffer !== buffer || p.byteOffset !== k * planeBytes || p.length !== planeBytes)
      return undefined;
  }
  return buffer;
}

/** Voxel memory from the pool, or new (not zero-filled: the caller writes every byte). */
function voxelMemory(byteLength: number, pool: VoxelBufferPool | undefined): ArrayBuffer {
  return pool ? pool.acquire(byteLength) : (Buffer.allocUnsafeSlow(byteLength).buffer as ArrayBuffer);
}

/** Copies `n` pixel bytes (one array or consecutive pieces) to `dst` at `at`. */
function copyPixels(src: Uint8Array | readonly Uint8Array[], dst: Uint8Array, at: number, n: number): void {
  if (src instanceof Uint8Array) {
    dst.set(src.subarray(0, n), at);
    return;
  }
  let left = n;
  for (const piece of src) {
    if (left <= 0) break;
    const k = Math.min(piece.length, left);
    dst.set(piece.subarray(0, k), at);
    at += k;
    left -= k;
  }
}

/** Keeps the low `bits` bits (sign-extending when signed): high bits may carry overlays (PS3.5 §8.1.1). */
function maskStored(a: Int8Array | Uint8Array | Int16Array | Uint16Array, bits: number, signed: boolean): void {
  const mask = (1 << bits) - 1;
  const sign = 1 << (bits - 1);
  for (let i = 0; i < a.length; i++) {
    let v = (a[i] as number) & mask;
    if (signed && v & sign) v -= 1 << bits;
    a[i] = v;
  }
}

/**
 * Parses Part-10 files of one series and builds its volume.
 * @param files - the files, any order
 * @param options - as {@link volumeFromSlices}
 * @returns the volume
 * @throws {@link DicomParseError} naming the file index for unreadable input; {@link SeriesGeometryError} for geometry
 */
export function volumeFromPart10(files: readonly Uint8Array[], options: VolumeFromSlicesOptions = {}): Volume {
  return volumeFromSlices(
    files.map((f, idx) => sliceFromPart10(f, `file ${idx}`)),
    options,
  );
}
