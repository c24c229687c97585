/**
 * Errors of the segmentation pipeline, the ONNX runtime host and the model manifest.
 * @packageDocumentation
 */
import { CdssError } from '@cdss/core';

/**
 * Machine-readable reasons a segmentation step can fail.
 * - `INVALID_INPUT`: a volume, shape, spacing or option is malformed (nothing was computed).
 * - `MODEL_LOAD_FAILED`: the ONNX file is missing or corrupt, or onnxruntime refused it.
 * - `MODEL_MISMATCH`: the manifest and the model disagree (input name, channels, window size).
 * - `INFERENCE_FAILED`: onnxruntime failed while running a window, or the predictor returned a wrong shape.
 * - `SESSION_CLOSED`: the session was closed (or its worker died) before or during a run.
 * - `ABORTED`: the caller's `AbortSignal` fired.
 */
export type SegmentationErrorCode =
  'INVALID_INPUT' | 'MODEL_LOAD_FAILED' | 'MODEL_MISMATCH' | 'INFERENCE_FAILED' | 'SESSION_CLOSED' | 'ABORTED';

/**
 * A segmentation step failed. `code` says why (see {@link SegmentationErrorCode}); the message names the
 * offending value's role and shape, never voxel data.
 * @category Errors
 */
export class SegmentationError extends CdssError {
  private static readonly marker = Symbol.for('@cdss/segmentation.segmentation-error');
  /** Why the step failed. */
  declare readonly code: SegmentationErrorCode;

  /**
   * @param code - the reason, see {@link SegmentationErrorCode}
   * @param message - what went wrong, in words
   * @param options - `cause`: the underlying error, if any
   */
  constructor(code: SegmentationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { code, cause: options.cause });
    (this as unknown as Record<symbol, boolean>)[SegmentationError.marker] = true;
  }

  /**
   * True when `error` is a `SegmentationError` from any copy of `@cdss/segmentation`.
   * @param error - the value to test
   */
  static override isInstance(error: unknown): error is SegmentationError {
    return (
      typeof error === 'object' &&
      error !== null &&
      (error as Record<symbol, unknown>)[SegmentationError.marker] === true
    );
  }
}

/** @internal Throws `INVALID_INPUT` unless `cond`. */
export function requireInput(cond: boolean, message: string): asserts cond {
  if (!cond) throw new SegmentationError('INVALID_INPUT', message);
}

/** @internal Throws `ABORTED` ("<what> was aborted", the signal's reason as cause) once `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new SegmentationError('ABORTED', `${what} was aborted`, { cause: signal.reason });
}

/** @internal Checks a `[C, ...spatial]` shape against a data length and returns the spatial voxel count. */
export function checkChannelFirst(
  data: ArrayLike<number>,
  shape: readonly number[],
  what: string,
  spatialDims?: number,
): number {
  requireInput(Array.isArray(shape) || ArrayBuffer.isView(shape), `${what}: shape must be an array`);
  requireInput(shape.length >= 2, `${what}: shape must be [channels, ...spatial], got [${shape.join(', ')}]`);
  if (spatialDims !== undefined) {
    requireInput(
      shape.length === spatialDims + 1,
      `${what}: expected ${spatialDims} spatial dimensions, got shape [${shape.join(', ')}]`,
    );
  }
  for (const d of shape) {
    requireInput(
      Number.isInteger(d) && d > 0,
      `${what}: every dimension must be a positive integer, got [${shape.join(', ')}]`,
    );
  }
  const voxels = shape.slice(1).reduce((a, b) => a * b, 1);
  const expected = voxels * (shape[0] as number);
  requireInput(
    data.length === expected,
    `${what}: data has ${data.length} values but shape [${shape.join(', ')}] needs ${expected}`,
  );
  return voxels;
}
