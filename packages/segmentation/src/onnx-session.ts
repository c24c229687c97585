/**
 * An onnxruntime-node CPU session hosted in a worker thread.
 *
 * onnxruntime-node's `session.run` resolves through `setImmediate(() => resolve(binding.run(...)))`, i.e. the whole
 * native run happens synchronously on the calling thread and blocks the event loop for its full duration
 * (seconds per BraTS window). This class keeps the session in a `worker_threads` Worker, so the caller's event loop
 * stays free (HTTP, AMQP heartbeats, progress events) while a window runs. Tensors cross the thread boundary as
 * transferred `ArrayBuffer`s, not copies.
 *
 * Memory arena (`enableCpuMemArena`): with the arena on (onnxruntime's default) the CPU allocator keeps the peak
 * of every run and reuses it: the fastest, but the process holds that peak for the session's lifetime.
 * With it off, intermediate tensors are returned to the system after each op: lower resident memory, some time
 * spent in malloc/free. Measured with bench/inference.ts (demo SegResNet f8, one 240×240×155 study padded to a
 * 240×240×160 window, 2 threads, each variant alone in a fresh process): peak RSS 2158 MiB with the arena,
 * 1620 MiB without (−25 %); bare `session.run` 2027 vs 1634 MiB. On the shared 2-core development machine the
 * time difference was inside its noise; shared/notes/monai-inference.md measured the f16 bundle network at
 * 17.4 s with the arena and 21.6–25.8 s without (4.8 vs 2.2 GB). Default: on (speed); turn it off for a
 * memory-bounded worker.
 * @packageDocumentation
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import { SegmentationError, requireInput } from './segmentation-errors.js';

/** Options of the onnxruntime CPU session; validated with {@link onnxSessionOptionsSchema}. */
export const onnxSessionOptionsSchema = z
  .object({
    /** Threads inside one operator (convolutions). Default: the machine's available parallelism. */
    intraOpNumThreads: z.number().int().min(1).max(1024).optional(),
    /** Threads across independent operators (only used with `executionMode: 'parallel'`). Default 1. */
    interOpNumThreads: z.number().int().min(1).max(1024).optional(),
    /** onnxruntime's CPU memory arena. Default `true` (onnxruntime's default): faster, holds its peak. */
    enableCpuMemArena: z.boolean().optional(),
    /** Memory-pattern planning for static shapes. Default `true` (onnxruntime's default). */
    enableMemPattern: z.boolean().optional(),
    /** Graph optimisation level. Default `all`. */
    graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).optional(),
    /** Operator scheduling. Default `sequential`. */
    executionMode: z.enum(['sequential', 'parallel']).optional(),
  })
  .strict();

/** Options of the onnxruntime CPU session. */
export type OnnxSessionOptions = z.infer<typeof onnxSessionOptionsSchema>;

/** Name, element type and shape of a model input or output (symbolic dimensions are strings). */
export interface OnnxTensorInfo {
  /** The value's name in the graph. */
  name: string;
  /** Element type, e.g. `float32`; `undefined` for a non-tensor value. */
  type: string | undefined;
  /** Dimensions: a number when fixed, a string when symbolic (e.g. `D`), empty when unknown. */
  shape: (number | string)[];
}

/** Per-run options of {@link OnnxWorkerSession.run}. */
export interface OnnxRunOptions {
  /** Input name; default: the model's first input. */
  inputName?: string;
  /** Output name; default: the model's first output. */
  outputName?: string;
  /**
   * Stops waiting for the result. onnxruntime cannot interrupt a running window, so the worker finishes it and
   * the result is dropped; the promise rejects at once with `ABORTED`.
   */
  signal?: AbortSignal;
  /**
   * Transfer `data`'s buffer to the worker instead of copying it (default `true`): `data` is detached
   * (length 0) afterwards. Pass `false` to keep using `data`.
   */
  transfer?: boolean;
}

/** The output of one run. */
export interface OnnxRunResult {
  /** The output tensor's values. */
  data: Float32Array;
  /** The output tensor's dimensions. */
  dims: number[];
  /** Milliseconds spent inside `session.run` in the worker. */
  runMs: number;
  /**
   * The input values' buffer, handed back by the worker once the run is over (the caller may refill and send it
   * again instead of allocating a new one); its contents are the input as sent.
   */
  input?: Float32Array;
}

type FromWorker =
  | { type: 'ready'; inputs: OnnxTensorInfo[]; outputs: OnnxTensorInfo[] }
  | { type: 'load-error'; message: string }
  | {
      type: 'result';
      id: number;
      data?: Float32Array;
      dims?: number[];
      runMs?: number;
      input?: Float32Array;
      error?: string;
    }
  | { type: 'closed' };

/**
 * The worker's code. It is evaluated as a CommonJS script (`eval: true`) so that it runs unchanged from the
 * TypeScript sources, the ESM build and the CJS build; onnxruntime-node's path is resolved by the parent.
 */
const WORKER_SOURCE = `
'use strict';
(async () => {
  // Only dynamic import() here: the script may be evaluated as CommonJS or, when the parent runs with
  // --input-type=module, as an ES module, and import() works in both.
  const { parentPort, workerData } = await import('node:worker_threads');
  const { performance } = await import('node:perf_hooks');
  const { createRequire } = await import('node:module');
  const ort = createRequire(workerData.ortPath)(workerData.ortPath);
  const describe = (m) => ({ name: m.name, type: m.isTensor ? m.type : undefined, shape: m.isTensor ? Array.from(m.shape) : [] });
  let session;
  try {
    session = await ort.InferenceSession.create(workerData.model, workerData.options);
  } catch (e) {
    parentPort.postMessage({ type: 'load-error', message: String((e && e.message) || e) });
    return;
  }
  parentPort.postMessage({ type: 'ready', inputs: session.inputMetadata.map(describe), outputs: session.outputMetadata.map(describe) });
  parentPort.on('message', async (msg) => {
    if (msg.type === 'close') {
      try { await session.release(); } catch (e) { /* releasing twice or after a failure is harmless */ }
      parentPort.postMessage({ type: 'closed' });
      parentPort.close();
      return;
    }
    if (msg.type !== 'run') return;
    let out;
    let runMs = 0;
    try {
      const input = new ort.Tensor('float32', msg.data, msg.dims);
      const t0 = performance.now();
      const res = await session.run({ [msg.inputName]: input }, [msg.outputName]);
      runMs = performance.now() - t0;
      out = res[msg.outputName];
      if (!out || out.type !== 'float32') throw new Error('output ' + msg.outputName + ' is not a float32 tensor');
    } catch (e) {
      parentPort.postMessage({ type: 'result', id: msg.id, error: String((e && e.message) || e) });
      return;
    }
    const data = out.data;
    // the input goes back too, so that the parent can fill it with its next window instead of a fresh array
    const reply = { type: 'result', id: msg.id, data, dims: Array.from(out.dims), runMs, input: msg.data };
    try {
      parentPort.postMessage(reply, [data.buffer, msg.data.buffer]);
    } catch (e) {
      reply.data = new Float32Array(data); // buffer not transferable (owned by the native side): copy
      parentPort.postMessage(reply, [reply.data.buffer, msg.data.buffer]);
    }
  });
})();
`;

function resolveOrt(): string {
  // __filename exists in the CJS build (and under vitest); import.meta.url in the ESM build.
  const base = typeof __filename === 'string' ? __filename : import.meta.url;
  return createRequire(base).resolve('onnxruntime-node');
}

interface Pending {
  resolve: (r: OnnxRunResult) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

/**
 * An onnxruntime-node CPU inference session running in its own worker thread.
 *
 * Create with {@link OnnxWorkerSession.create}; always {@link OnnxWorkerSession.close} it. Runs are queued and
 * executed one at a time. If the worker dies, every pending and later run rejects with `SESSION_CLOSED`.
 */
export class OnnxWorkerSession {
  /** The model's inputs as onnxruntime reports them. */
  readonly inputs: readonly OnnxTensorInfo[];
  /** The model's outputs as onnxruntime reports them. */
  readonly outputs: readonly OnnxTensorInfo[];
  /** The options the session was created with (after defaults). */
  readonly options: Required<
    Pick<OnnxSessionOptions, 'intraOpNumThreads' | 'interOpNumThreads' | 'enableCpuMemArena'>
  > &
    OnnxSessionOptions;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: SegmentationError | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    worker: Worker,
    ready: Extract<FromWorker, { type: 'ready' }>,
    options: OnnxWorkerSession['options'],
  ) {
    this.#worker = worker;
    this.inputs = ready.inputs;
    this.outputs = ready.outputs;
    this.options = options;
    worker.on('message', (msg: FromWorker) => this.#onMessage(msg));
    worker.on('error', (err) =>
      this.#fail(new SegmentationError('SESSION_CLOSED', `onnxruntime worker failed: ${err.message}`, { cause: err })),
    );
    worker.on('exit', (code) =>
      this.#fail(new SegmentationError('SESSION_CLOSED', `onnxruntime worker exited (code ${code})`)),
    );
    worker.unref();
  }

  /**
   * Loads a model into a new worker thread.
   * @param model - path of an `.onnx` file, or its bytes (copied into the worker)
   * @param options - threads, memory arena, optimisation level (see {@link onnxSessionOptionsSchema})
   * @returns the ready session
   * @throws {@link ValidationError} for bad options; {@link SegmentationError} `MODEL_LOAD_FAILED` when the file is
   *   missing or onnxruntime rejects the model (the message carries onnxruntime's reason)
   */
  static async create(model: string | Uint8Array, options: OnnxSessionOptions = {}): Promise<OnnxWorkerSession> {
    const parsed = onnxSessionOptionsSchema.safeParse(options);
    if (!parsed.success) throw ValidationError.fromZod(parsed.error, 'Invalid onnxruntime session options');
    requireInput(
      typeof model === 'string' ? model.length > 0 : model instanceof Uint8Array && model.length > 0,
      'model must be a file path or non-empty bytes',
    );
    const full: OnnxWorkerSession['options'] = {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...parsed.data,
      intraOpNumThreads: parsed.data.intraOpNumThreads ?? availableParallelism(),
      interOpNumThreads: parsed.data.interOpNumThreads ?? 1,
      enableCpuMemArena: parsed.data.enableCpuMemArena ?? true,
    };
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ortPath: resolveOrt(), model, options: { ...full, executionProviders: ['cpu'] } },
    });
    const ready = await new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => {
      const fail = (message: string, cause?: unknown): void => {
        cleanup();
        void worker.terminate();
        reject(
          new SegmentationError(
            'MODEL_LOAD_FAILED',
            `cannot load ONNX model${typeof model === 'string' ? ` ${model}` : ''}: ${message}`,
            { cause },
          ),
        );
      };
      const onMessage = (msg: FromWorker): void => {
        if (msg.type === 'ready') {
          cleanup();
          resolve(msg);
        } else if (msg.type === 'load-error') fail(msg.message);
      };
      const onError = (err: Error): void => fail(err.message, err);
      const onExit = (code: number): void => fail(`worker exited with code ${code}`);
      const cleanup = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    return new OnnxWorkerSession(worker, ready, full);
  }

  /** True once the session is closed or its worker died. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Runs the model on one float32 tensor in the worker. The event loop stays free meanwhile.
   * @param data - the input values, C-order
   * @param dims - the input dimensions, e.g. `[1, 4, 240, 240, 160]`
   * @param options - input/output names, abort signal, transfer
   * @returns the output values and dimensions
   * @throws {@link SegmentationError} `INVALID_INPUT` for a size mismatch, `INFERENCE_FAILED` when onnxruntime
   *   rejects the run (wrong shape, …), `SESSION_CLOSED` after close or a worker crash, `ABORTED` on abort
   */
  run(data: Float32Array, dims: readonly number[], options: OnnxRunOptions = {}): Promise<OnnxRunResult> {
    if (this.#closed) return Promise.reject(this.#closed);
    try {
      requireInput(data instanceof Float32Array, 'input must be a Float32Array');
      requireInput(
        dims.every((d) => Number.isInteger(d) && d > 0),
        `dims must be positive integers, got [${dims.join(', ')}]`,
      );
      const n = dims.reduce((a, b) => a * b, 1);
      requireInput(n === data.length, `input has ${data.length} values but dims [${dims.join(', ')}] need ${n}`);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const inputName = options.inputName ?? this.inputs[0]?.name ?? '';
    const outputName = options.outputName ?? this.outputs[0]?.name ?? '';
    if (options.signal?.aborted) {
      return Promise.reject(
        new SegmentationError('ABORTED', 'inference was aborted', { cause: options.signal.reason }),
      );
    }
    const id = this.#nextId++;
    return new Promise<OnnxRunResult>((resolve, reject) => {
      const onAbort = (): void => {
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        p.cleanup();
        reject(new SegmentationError('ABORTED', 'inference was aborted', { cause: options.signal?.reason }));
      };
      const cleanup = (): void => {
        options.signal?.removeEventListener('abort', onAbort);
        if (this.#pending.size === 0) this.#worker.unref();
      };
      this.#pending.set(id, { resolve, reject, cleanup });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#worker.ref();
      const payload = options.transfer === false ? new Float32Array(data) : data;
      this.#worker.postMessage({ type: 'run', id, data: payload, dims: [...dims], inputName, outputName }, [
        payload.buffer as ArrayBuffer,
      ]);
    });
  }

  /**
   * Releases the session and stops the worker. Pending runs reject with `SESSION_CLOSED`. Idempotent.
   * @returns when the worker has exited
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (!this.#closed) {
        const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
        this.#fail(new SegmentationError('SESSION_CLOSED', 'the onnxruntime session is closed'));
        this.#worker.ref();
        this.#worker.postMessage({ type: 'close' });
        const timer = setTimeout(() => void this.#worker.terminate(), 5_000);
        await exited;
        clearTimeout(timer);
      }
    })();
    return this.#closing;
  }

  #onMessage(msg: FromWorker): void {
    if (msg.type !== 'result') return;
    const p = this.#pending.get(msg.id);
    if (!p) return; // aborted: drop the late result
    this.#pending.delete(msg.id);
    p.cleanup();
    if (msg.error !== undefined || !msg.data || !msg.dims) {
      p.reject(new SegmentationError('INFERENCE_FAILED', `onnxruntime run failed: ${msg.error ?? 'no output'}`));
    } else {
      p.resolve({
        data: msg.data,
        dims: msg.dims,
        runMs: msg.runMs ?? 0,
        ...(msg.input instanceof Float32Array ? { input: msg.input } : {}),
      });
    }
  }

  #fail(error: SegmentationError): void {
    if (!this.#closed) this.#closed = error;
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.cleanup();
      p.reject(error);
    }
  }
}
