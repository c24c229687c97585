/**
 * A series' volume from Part-10 instances that arrive as bytes (the parts of a WADO-RS response, say), written
 * in as they come: each instance's attributes are read from its first bytes and its pixel data is copied
 * straight into staging pages, so nothing the network handed over is kept (the chunks may be a reused socket
 * buffer) and no instance is ever held whole.
 * @packageDocumentation
 */
import { DicomParseError } from './dicom-errors.js';
import {
  buildVolume,
  sliceFromPart10,
  sliceHead,
  type DicomSlice,
  type VolumeFromSlicesOptions,
} from './series-volume.js';
import type { Volume } from './volume.js';
import { VoxelBufferPool } from './voxel-pool.js';

/** Receives one instance's bytes, in order. */
export interface InstanceSink {
  /**
   * The next bytes of the instance (only read during the call).
   * @throws {@link DicomParseError} as soon as the bytes show the instance is not a readable slice
   */
  write(bytes: Uint8Array): void;
  /**
   * The instance is complete.
   * @throws {@link DicomParseError} for an instance that ended early or is not a readable slice
   */
  end(): void;
}

/** Options of {@link SeriesVolumeAssembler}. */
export interface SeriesVolumeAssemblerOptions {
  /**
   * Where staging pages come from and go back to. Default: a pool shared by all assemblers of this thread that
   * keeps up to 64 MiB of pages between series.
   */
  pool?: VoxelBufferPool | undefined;
}

/** Staging pages hold whole slices; 4 MiB is 36 slices of 240×240×16 bits. */
const PAGE_BYTES = 4 * 1024 * 1024;
/** An instance's attributes are looked for in its first bytes: this many at first, growing to HEAD_MAX_BYTES. */
const HEAD_FIRST_BYTES = 2048;
const HEAD_MAX_BYTES = 256 * 1024;
const sharedStaging = new VoxelBufferPool({ maxRetainedBytes: 64 * 1024 * 1024 });

/**
 * Builds one series' volume from its instances' bytes.
 * @example
 * ```ts
 * const assembler = new SeriesVolumeAssembler({ pool });
 * try {
 *   const reader = new MultipartReader(boundary, (_headers, length) => assembler.instance(length));
 *   // ... reader.write(chunk) for every chunk of the response, then reader.end()
 *   return assembler.build();
 * } finally {
 *   assembler.dispose();
 * }
 * ```
 */
export class SeriesVolumeAssembler {
  readonly #pool: VoxelBufferPool;
  readonly #pages: ArrayBuffer[] = [];
  #pageUsed = 0;
  readonly #slices: DicomSlice[] = [];
  /** First bytes of the instance being read (reused across instances). */
  #head = new Uint8Array(HEAD_FIRST_BYTES);
  #open = false;

  /** @param options - staging pool */
  constructor(options: SeriesVolumeAssemblerOptions = {}) {
    this.#pool = options.pool ?? sharedStaging;
  }

  /** Slices read so far. */
  get sliceCount(): number {
    return this.#slices.length;
  }

  /**
   * Starts the next instance (one at a time).
   * @param length - its byte length when known (a multipart part's Content-Length); it is then checked
   * @param source - names it in errors (never patient data)
   * @returns where its bytes go
   */
  instance(length?: number, source?: string): InstanceSink {
    if (this.#open) throw new Error('SeriesVolumeAssembler: the previous instance has not ended');
    this.#open = true;
    return new InstanceReader(this, length ?? Infinity, source ?? `instance ${this.#slices.length}`);
  }

  /**
   * Builds the volume from the slices read (as {@link volumeFromSlices}) and gives the staging pages back.
   * @param options - volume options; `pool` is where the volume's memory comes from
   * @returns the volume
   * @throws `SeriesGeometryError` for a series that is not one regular volume
   */
  build(options: VolumeFromSlicesOptions = {}): Volume {
    let volume: Volume | undefined;
    try {
      // Slices that arrived in order into the first page (the usual case once a pool holds a volume-sized
      // buffer) are the volume already: that page is handed over instead of copied.
      const built = buildVolume(this.#slices, options, true);
      volume = built;
      return built;
    } finally {
      this.dispose(volume?.data.buffer);
    }
  }

  /**
   * Gives the staging pages back without building (after a failure). Safe to call more than once.
   * @param keep - a page that became a volume's memory
   */
  dispose(keep?: ArrayBufferLike): void {
    for (const page of this.#pages.splice(0)) if (page !== keep) this.#pool.release(page);
    this.#slices.length = 0;
    this.#pageUsed = 0;
  }

  /** @internal Head buffer of at least `n` bytes, keeping the first `keep`. */
  headBuffer(n: number, keep: number): Uint8Array {
    if (this.#head.length < n) {
      const bigger = new Uint8Array(n);
      bigger.set(this.#head.subarray(0, keep));
      this.#head = bigger;
    }
    return this.#head;
  }

  /** @internal Room for one slice's pixels in a staging page. */
  reserve(bytes: number): Uint8Array {
    let page = this.#pages[this.#pages.length - 1];
    if (!page || page.byteLength - this.#pageUsed < bytes) {
      // The first page is the largest the pool has: a previous volume's buffer holds the whole series.
      const size = Math.max(PAGE_BYTES, bytes);
      page = this.#pages.length === 0 ? this.#pool.acquireLargest(size) : this.#pool.acquire(size);
      this.#pages.push(page);
      this.#pageUsed = 0;
    }
    const view = new Uint8Array(page, this.#pageUsed, bytes);
    this.#pageUsed += bytes;
    return view;
  }

  /** @internal An instance has been read. */
  add(slice: DicomSlice | undefined): void {
    this.#open = false;
    if (slice) this.#slices.push(slice);
  }
}

/** Reads one instance: attributes from its head, then its pixel bytes into a staging slot. */
class InstanceReader implements InstanceSink {
  #received = 0;
  #want: number;
  #slice: DicomSlice | undefined;
  #slot: Uint8Array | undefined;
  #filled = 0;
  /** Set when the attributes were not found in the first HEAD_MAX_BYTES: the instance is kept whole. */
  #whole: Uint8Array[] | undefined;
  #failed = false;

  constructor(
    private readonly assembler: SeriesVolumeAssembler,
    private readonly length: number,
    private readonly source: string,
  ) {
    this.#want = Math.min(length, HEAD_FIRST_BYTES);
  }

  write(bytes: Uint8Array): void {
    if (this.#failed) return;
    try {
      this.#write(bytes);
    } catch (error) {
      this.#failed = true;
      this.assembler.add(undefined);
      throw error;
    }
  }

  #write(bytes: Uint8Array): void {
    if (this.#received + bytes.length > this.length) {
      throw new DicomParseError(`instance is longer than its declared ${this.length} bytes`, { source: this.source });
    }
    let at = 0;
    // Collect the head until the attributes are readable (or the instance has to be kept whole).
    while (!this.#slot && !this.#whole && at < bytes.length) {
      const head = this.assembler.headBuffer(this.#want, this.#received);
      const k = Math.min(bytes.length - at, this.#want - this.#received);
      head.set(bytes.subarray(at, at + k), this.#received);
      this.#received += k;
      at += k;
      // (an instance no longer than the head is read whole at the end)
      if (this.#received === this.#want && this.#received < this.length) this.#readHead(head);
    }
    if (at === bytes.length) return;
    this.#received += bytes.length - at;
    if (this.#whole) {
      this.#whole.push(bytes.slice(at));
    } else if (this.#slot) {
      // Pixel bytes into the slot; anything after the pixel data (rare trailing elements) is not needed.
      const k = Math.min(bytes.length - at, this.#slot.length - this.#filled);
      if (k > 0) this.#slot.set(bytes.subarray(at, at + k), this.#filled);
      this.#filled += k;
    }
  }

  /** Tries to read the attributes from the head; grows the head, or gives up and keeps the instance whole. */
  #readHead(head: Uint8Array): void {
    const found = sliceHead(head.subarray(0, this.#received), this.length, this.source);
    if (!found) {
      if (this.#want >= HEAD_MAX_BYTES) this.#whole = [head.slice(0, this.#received)];
      else this.#want = Math.min(this.length, this.#want * 4);
      return;
    }
    this.#slice = found.slice;
    this.#slot = this.assembler.reserve(found.pixelBytes);
    const inHead = Math.min(found.pixelBytes, Math.max(0, this.#received - found.pixelOffset));
    this.#slot.set(head.subarray(found.pixelOffset, found.pixelOffset + inHead));
    this.#filled = inHead;
  }

  end(): void {
    if (this.#failed) return;
    try {
      this.assembler.add(this.#finish());
    } catch (error) {
      this.#failed = true;
      this.assembler.add(undefined);
      throw error;
    }
  }

  #finish(): DicomSlice {
    const opts = { source: this.source };
    if (this.length !== Infinity && this.#received < this.length) {
      throw new DicomParseError(`instance ended after ${this.#received} of its ${this.length} bytes`, opts);
    }
    if (this.#slot && this.#slice) {
      if (this.#filled < this.#slot.length) {
        throw new DicomParseError(
          `PixelData ended after ${this.#filled} of ${this.#slot.length} bytes: file truncated`,
          opts,
        );
      }
      return { ...this.#slice, pixels: this.#slot };
    }
    // A small instance (all of it in the head) or one kept whole: read it as a file.
    const file = this.#whole ? Buffer.concat(this.#whole) : this.assembler.headBuffer(0, 0).subarray(0, this.#received);
    const slice = sliceFromPart10(file, this.source);
    const slot = this.assembler.reserve((slice.pixels as Uint8Array).length);
    slot.set(slice.pixels as Uint8Array);
    return { ...slice, pixels: slot };
  }
}
