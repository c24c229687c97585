/**
 * Pure helpers of the viewer: patient-orientation letters of screen directions, window/level from a VOI range, the
 * slice position along the view normal, and window/level presets. DICOM patient coordinates are LPS: +x towards the
 * patient's left, +y posterior, +z superior.
 * @see https://dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.7.6.2.html
 */

/** A 3-vector. */
export type Vec3 = readonly [number, number, number];

const LETTERS: ReadonlyArray<readonly [string, string]> = [
  ['L', 'R'],
  ['P', 'A'],
  ['S', 'I'],
];

/**
 * The orientation letters of a direction in patient space: the main axis first, then any other axis that
 * contributes more than `oblique` (so an oblique direction reads e.g. "LA").
 * @param v - a direction (need not be unit length)
 * @param oblique - the share of the largest component below which an axis is left out
 */
export function orientationLetters(v: Vec3, oblique = 0.25): string {
  const largest = Math.max(Math.abs(v[0]), Math.abs(v[1]), Math.abs(v[2]));
  if (largest === 0) return '';
  return [0, 1, 2]
    .filter((axis) => Math.abs(v[axis] as number) >= largest * oblique)
    .sort((a, b) => Math.abs(v[b] as number) - Math.abs(v[a] as number))
    .map((axis) => (LETTERS[axis] as readonly [string, string])[(v[axis] as number) >= 0 ? 0 : 1])
    .join('');
}

const cross = (a: Vec3, b: Vec3): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const negate = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];

/** Letters at the four edges of a viewport. */
export interface EdgeLetters {
  top: string;
  bottom: string;
  left: string;
  right: string;
}

/**
 * The orientation markers of a view: what lies towards each edge of the screen.
 * @param viewUp - the camera's up direction (towards the top edge)
 * @param viewPlaneNormal - the view plane normal, pointing from the focal point towards the camera
 */
export function edgeLetters(viewUp: Vec3, viewPlaneNormal: Vec3): EdgeLetters {
  const right = cross(viewUp, viewPlaneNormal);
  return {
    top: orientationLetters(viewUp),
    bottom: orientationLetters(negate(viewUp)),
    right: orientationLetters(right),
    left: orientationLetters(negate(right)),
  };
}

/**
 * Window width and centre of a VOI range.
 * @param range - lower and upper bound of the displayed intensities
 */
export function windowLevel(range: { lower: number; upper: number }): { width: number; center: number } {
  return { width: range.upper - range.lower, center: (range.upper + range.lower) / 2 };
}

/**
 * The VOI range of a window width and centre.
 * @param width - window width (> 0)
 * @param center - window centre
 */
export function voiRange(width: number, center: number): { lower: number; upper: number } {
  const w = Math.max(1, width);
  return { lower: center - w / 2, upper: center + w / 2 };
}

/**
 * Where the current slice is, in mm along the axis the view looks along (the patient axis closest to the normal),
 * e.g. `{ axis: 'z', mm: -12.5 }` for an axial view.
 * @param focalPoint - the camera's focal point (on the slice)
 * @param viewPlaneNormal - the view plane normal
 */
export function slicePosition(focalPoint: Vec3, viewPlaneNormal: Vec3): { axis: 'x' | 'y' | 'z'; mm: number } {
  const abs = viewPlaneNormal.map(Math.abs);
  const axis = abs[0]! >= abs[1]! && abs[0]! >= abs[2]! ? 0 : abs[1]! >= abs[2]! ? 1 : 2;
  return { axis: (['x', 'y', 'z'] as const)[axis], mm: focalPoint[axis] as number };
}

/** A window/level preset. */
export interface Preset {
  id: string;
  label: string;
  width: number;
  center: number;
}

/**
 * Presets for an MR series, from its intensity histogram's percentiles (MR intensities have no fixed scale, so fixed
 * CT-style numbers would not mean anything): the full range, the body of the data (1st–99th percentile), and a
 * narrow, high-contrast window around the median.
 * @param values - the voxel intensities (sampled is fine)
 */
export function mrPresets(values: ArrayLike<number>): Preset[] {
  const sample: number[] = [];
  const step = Math.max(1, Math.floor(values.length / 50_000));
  for (let i = 0; i < values.length; i += step) sample.push(values[i] as number);
  sample.sort((a, b) => a - b);
  if (sample.length === 0) return [];
  const at = (p: number): number => sample[Math.min(sample.length - 1, Math.floor(p * (sample.length - 1)))] as number;
  const preset = (id: string, label: string, lower: number, upper: number): Preset => ({
    id,
    label,
    ...windowLevel({ lower, upper: Math.max(upper, lower + 1) }),
  });
  // The median of the non-background voxels: most of a head MR volume is air.
  const foreground = sample.filter((v) => v > at(0.5) * 0.1 + at(0) * 0.9);
  const median = foreground[Math.floor(foreground.length / 2)] ?? at(0.5);
  const spread = (at(0.99) - at(0.01)) / 4;
  return [
    preset('full', 'Full range', at(0), at(1)),
    preset('body', 'Brain (1–99 %)', at(0.01), at(0.99)),
    preset('contrast', 'High contrast', median - spread / 2, median + spread / 2),
  ];
}

/**
 * Presets from the range the viewer opened with (when the voxels are not at hand): that range, a softer window
 * (70 % of it) and a high-contrast one (35 %), around its centre.
 * @param range - the initial VOI range
 */
export function rangePresets(range: { lower: number; upper: number }): Preset[] {
  const { width, center } = windowLevel(range);
  return [
    { id: 'full', label: 'Full range', width, center },
    { id: 'body', label: 'Soft tissue', width: width * 0.7, center },
    { id: 'contrast', label: 'High contrast', width: width * 0.35, center },
  ];
}
