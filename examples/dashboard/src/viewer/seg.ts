/**
 * A binary DICOM SEG (Segmentation Storage) read with dcmjs and placed on the grid of the series it segments: each
 * frame goes to the source slice it names (DerivationImageSequence), else to the slice at its position
 * (PlanePositionSequence). Pure: no Cornerstone here, so it is unit-tested in Node.
 *
 * Why not `@cornerstonejs/adapters`: its SEG import compiles code at run time (ndarray uses `new Function`), which the
 * server's Content-Security-Policy rightly refuses.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_A.51.html
 */
import dcmjs from 'dcmjs';

/** One segment of a SEG. */
export interface SegSegmentInfo {
  number: number;
  label: string;
  /** Recommended display colour, sRGB 0–255, when the SEG gives one. */
  color?: [number, number, number];
}

/** Where the source slices are: per slice of the target grid, its SOP Instance UID and position. */
export interface TargetSlices {
  sopInstanceUids: readonly string[];
  positions: ReadonlyArray<readonly [number, number, number]>;
  /** The slice normal (row × column direction). */
  normal: readonly [number, number, number];
  rows: number;
  columns: number;
}

/** What {@link placeSeg} returns. */
export interface PlacedSeg {
  /** Segment numbers, one per voxel, slice after slice in the target's order. */
  voxels: Uint8Array;
  segments: SegSegmentInfo[];
  /** Frames that matched no slice (0 for a SEG made on this series). */
  unplaced: number;
}

type Item = Record<string, unknown>;
const firstItem = (value: unknown): Item | undefined =>
  (Array.isArray(value) ? (value[0] as Item | undefined) : (value as Item | undefined)) ?? undefined;
const asArray = (value: unknown): Item[] => (Array.isArray(value) ? (value as Item[]) : value ? [value as Item] : []);

/** CIELab (DICOM, scaled to 0–65535) to sRGB 0–255. */
export function dicomLabToRgb(lab: readonly number[]): [number, number, number] {
  const L = ((lab[0] ?? 0) / 65535) * 100;
  const a = ((lab[1] ?? 0) / 65535) * 255 - 128;
  const b = ((lab[2] ?? 0) / 65535) * 255 - 128;
  const fy = (L + 16) / 116;
  const f = (t: number): number => (t ** 3 > 0.008856 ? t ** 3 : (t - 16 / 116) / 7.787);
  const x = 0.95047 * f(a / 500 + fy);
  const y = f(fy);
  const z = 1.08883 * f(fy - b / 200);
  const linear = [
    x * 3.2406 - y * 1.5372 - z * 0.4986,
    -x * 0.9689 + y * 1.8758 + z * 0.0415,
    x * 0.0557 - y * 0.204 + z * 1.057,
  ];
  return linear.map((c) => {
    const s = c > 0.0031308 ? 1.055 * c ** (1 / 2.4) - 0.055 : 12.92 * c;
    return Math.round(Math.max(0, Math.min(1, s)) * 255);
  }) as [number, number, number];
}

/**
 * Reads a binary SEG and places its frames on the target slices.
 * @param part10 - the SEG's Part-10 bytes
 * @param target - the slices of the segmented series, in the order of the labelmap to fill
 * @throws Error for a SEG that is not binary or whose frames do not match the slice size
 */
export function placeSeg(part10: ArrayBuffer, target: TargetSlices): PlacedSeg {
  const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
  const ds = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(part10).dict) as Item;
  const rows = Number(ds['Rows']);
  const columns = Number(ds['Columns']);
  if (ds['SegmentationType'] !== 'BINARY' || Number(ds['BitsAllocated']) !== 1)
    throw new Error('Only binary segmentations are supported');
  if (rows !== target.rows || columns !== target.columns)
    throw new Error('The segmentation does not match the size of the images');
  const segments: SegSegmentInfo[] = asArray(ds['SegmentSequence']).map((s) => {
    const lab = s['RecommendedDisplayCIELabValue'] as number[] | undefined;
    return {
      number: Number(s['SegmentNumber']),
      label: String(s['SegmentLabel'] ?? `Segment ${String(s['SegmentNumber'])}`),
      ...(Array.isArray(lab) && lab.length === 3 ? { color: dicomLabToRgb(lab) } : {}),
    };
  });
  const pixelData = ds['PixelData'];
  const buffer = (Array.isArray(pixelData) ? pixelData[0] : pixelData) as ArrayBuffer;
  const bits = new Uint8Array(buffer);
  const frameSize = rows * columns;
  const sliceOfSop = new Map(target.sopInstanceUids.map((uid, i) => [uid, i]));
  const along = (p: readonly number[]): number =>
    (p[0] ?? 0) * target.normal[0] + (p[1] ?? 0) * target.normal[1] + (p[2] ?? 0) * target.normal[2];
  const depths = target.positions.map(along);
  const spacing = depths.length > 1 ? Math.abs((depths[1] as number) - (depths[0] as number)) : 1;
  const sliceAt = (position: readonly number[] | undefined): number => {
    if (!position) return -1;
    const d = along(position);
    let best = -1;
    let bestDistance = Infinity;
    depths.forEach((depth, i) => {
      const distance = Math.abs(depth - d);
      if (distance < bestDistance) [best, bestDistance] = [i, distance];
    });
    return bestDistance <= spacing / 2 + 1e-3 ? best : -1;
  };
  const shared = firstItem(ds['SharedFunctionalGroupsSequence']);
  const frames = asArray(ds['PerFrameFunctionalGroupsSequence']);
  const voxels = new Uint8Array(frameSize * target.sopInstanceUids.length);
  let unplaced = 0;
  frames.forEach((frame, f) => {
    const segment = Number(
      firstItem(frame['SegmentIdentificationSequence'] ?? shared?.['SegmentIdentificationSequence'])?.[
        'ReferencedSegmentNumber'
      ],
    );
    const source = firstItem(firstItem(frame['DerivationImageSequence'])?.['SourceImageSequence']);
    const bySop = sliceOfSop.get(String(source?.['ReferencedSOPInstanceUID'] ?? ''));
    const position = firstItem(frame['PlanePositionSequence'])?.['ImagePositionPatient'] as number[] | undefined;
    const slice = bySop ?? sliceAt(position?.map(Number));
    if (slice < 0 || !Number.isFinite(segment)) {
      unplaced++;
      return;
    }
    const offset = slice * frameSize;
    const firstBit = f * frameSize;
    for (let p = 0; p < frameSize; p++) {
      const bit = firstBit + p;
      if (((bits[bit >> 3] ?? 0) >> (bit & 7)) & 1) voxels[offset + p] = segment;
    }
  });
  return { voxels, segments, unplaced };
}
