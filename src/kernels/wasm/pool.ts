/**
 * Worker threads that run kernels on parts of a shared WebAssembly memory: row ranges of a
 * matrix product, image ranges of a convolution. Handing work over costs about a microsecond
 * when the worker is spinning on the control block (Atomics), against tens of microseconds
 * through Atomics.wait/notify or postMessage; a worker spins for a while after each job, then
 * sleeps in Atomics.wait.
 *
 * Uses only what browsers have too (WebAssembly, Atomics); the caller supplies the function
 * that starts a worker (worker_threads in Node, Web Workers in a browser).
 */

/** Int32 slots of the control block at the start of the memory. */
const GENERATION = 0;
const PENDING = 1;
const OPERATION = 2;
/** Up to 14 arguments of the operation. */
const ARGS = 4;
const MAX_ARGS = 14;
/** The work is split as [i · chunk, (i + 1) · chunk) of total, for thread i. */
const TOTAL = 20;
const CHUNK = 21;
/** Per-thread buffers: thread i's starts at base + i · bytes. */
const SCRATCH = 22;
const SCRATCH_BYTES = 23;
const COLUMNS = 24;
const COLUMNS_BYTES = 25;
/** Private weight-gradient sums of the threads: thread i's at base + i · bytes. */
const PARTIALS = 26;
const PARTIALS_BYTES = 27;
export const CONTROL_BYTES = 256;
/**
 * How long an idle worker keeps spinning before it sleeps. The MLP's step leaves the worker idle
 * for 50-100 us between its two large products; after a 0.05 ms spin it slept, and waking it
 * cost the second product its speed-up (2 threads no faster than 1). See the README.
 */
const SPIN_MILLISECONDS = 2;

/** Operation codes shared with WORKER_BODY. */
export const Op = {
  Stop: 0,
  Gemm: 1,
  ConvForward: 2,
  ConvBackwardInput: 3,
  ConvBackwardWeight: 4,
  /** A matrix product split by columns: thread i computes columns [i · chunk, (i + 1) · chunk). */
  GemmColumns: 5,
  /** Winograd convolution (forward, or input gradient with flipped filters): args dst, src, filters, H, W, in, out, zeros. */
  WinogradForward: 6,
  /** Winograd weight gradient into each thread's partials: args -, src, dout, H, W, in, out, zeros. */
  WinogradWeight: 7,
  /** Adam over ranges of the parameters: args param, grad, m, v, then six floats (see adamStep). */
  Adam: 8,
  /** Elementwise kernels over ranges: args out, inp (relu); dinp, dout, out (reluBackward); out, a, b (multiply). */
  Relu: 9,
  ReluBackward: 10,
  Multiply: 11,
  /** Bias over ranges of rows: args out, bias, cols. */
  AddBias: 12,
  /** 2x2 max pooling over ranges of images: args out, inp, H, W, C; dinp, dout, inp, out, H, W, C. */
  MaxPool: 13,
  MaxPoolBackward: 14,
  /**
   * A matrix product split by k into each thread's partials: thread i multiplies A's columns and
   * B's rows [i · chunk, (i + 1) · chunk). Args as for Gemm, then m.
   */
  GemmDeep: 15,
  /** Row sums over ranges of rows into each thread's partials: args dout, cols. */
  SumRows: 16,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** This worker's index; the calling thread is 0. */
  index: number;
}

/** Starts one worker running WORKER_BODY with `init`; resolves once it reports ready. */
export type SpawnWorker = (init: WorkerInit) => Promise<{ terminate(): unknown }>;

/**
 * The worker's program, as source text so it can start from a string in Node (eval) and from a
 * Blob in a browser: `(${WORKER_BODY})(init, ready)`. Plain JavaScript, no imports.
 */
export const WORKER_BODY = `function (init, ready) {
  const { module, memory, index } = init;
  const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const control = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
  // The same slots read as floats, for arguments that are not whole numbers.
  const floats = new Float32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
  let seen = Atomics.load(control, ${GENERATION});
  ready();
  for (;;) {
    // Spin a while before sleeping: waking a sleeping worker costs more than a short job.
    let idleSince = performance.now();
    let spins = 0;
    while (Atomics.load(control, ${GENERATION}) === seen) {
      if ((++spins & 1023) === 0 && performance.now() - idleSince > ${SPIN_MILLISECONDS}) {
        Atomics.wait(control, ${GENERATION}, seen);
        idleSince = performance.now();
      }
    }
    seen = Atomics.load(control, ${GENERATION});
    const op = Atomics.load(control, ${OPERATION});
    if (op === ${Op.Stop}) return;
    const a = control.subarray(${ARGS}, ${ARGS + MAX_ARGS});
    const total = control[${TOTAL}];
    const start = Math.min(total, index * control[${CHUNK}]);
    const end = Math.min(total, start + control[${CHUNK}]);
    const scratch = control[${SCRATCH}] + index * control[${SCRATCH_BYTES}];
    const columns = control[${COLUMNS}] + index * control[${COLUMNS_BYTES}];
    // This thread's private sums (a weight gradient, a split product or row sums).
    const partial = control[${PARTIALS}] + index * control[${PARTIALS_BYTES}];
    if (op === ${Op.Gemm}) {
      kernels.gemm(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], start, end, scratch);
    } else if (op === ${Op.GemmColumns}) {
      // a[5] is B, a[7] its column stride, a[8] is C: offset both to column 'start'.
      kernels.gemm(end - start, a[1], a[2], a[3], a[4], a[5] + 4 * start * a[7], a[6], a[7], a[8] + 4 * start, a[9], a[10], 0, a[11], scratch);
    } else if (op === ${Op.GemmDeep}) {
      kernels.gemm(a[0], end - start, a[2] + 4 * start * a[4], a[3], a[4], a[5] + 4 * start * a[6], a[6], a[7], partial, a[9], 0, 0, a[11], scratch);
    } else if (op === ${Op.SumRows}) {
      kernels.zero(partial, a[1]);
      kernels.sumRows(partial, a[0] + 4 * start * a[1], end - start, a[1]);
    } else if (op === ${Op.ConvForward}) {
      kernels.conv2dForward(a[0], a[1], a[2], start, end, a[3], a[4], a[5], a[6], a[7], columns, scratch);
    } else if (op === ${Op.ConvBackwardInput}) {
      kernels.conv2dBackwardInput(a[0], a[1], a[2], start, end, a[3], a[4], a[5], a[6], a[7], columns, scratch);
    } else if (op === ${Op.ConvBackwardWeight}) {
      kernels.conv2dBackwardWeight(partial, a[1], a[2], start, end, a[3], a[4], a[5], a[6], a[7], columns, scratch);
    } else if (op === ${Op.WinogradForward}) {
      kernels.winogradForward(a[0], a[1], a[2], start, end, a[3], a[4], a[5], a[6], columns, scratch, a[7]);
    } else if (op === ${Op.Relu}) {
      kernels.relu(a[0] + 4 * start, a[1] + 4 * start, end - start);
    } else if (op === ${Op.ReluBackward}) {
      kernels.reluBackward(a[0] + 4 * start, a[1] + 4 * start, a[2] + 4 * start, end - start);
    } else if (op === ${Op.Multiply}) {
      kernels.multiply(a[0] + 4 * start, a[1] + 4 * start, a[2] + 4 * start, end - start);
    } else if (op === ${Op.AddBias}) {
      kernels.addBias(a[0] + 4 * start * a[2], a[1], end - start, a[2]);
    } else if (op === ${Op.MaxPool}) {
      const image = a[2] * a[3] * a[4], pooled = (a[2] >> 1) * (a[3] >> 1) * a[4];
      kernels.maxPool2x2(a[0] + 4 * start * pooled, a[1] + 4 * start * image, end - start, a[2], a[3], a[4]);
    } else if (op === ${Op.MaxPoolBackward}) {
      const image = a[4] * a[5] * a[6], pooled = (a[4] >> 1) * (a[5] >> 1) * a[6];
      kernels.maxPool2x2Backward(a[0] + 4 * start * image, a[1] + 4 * start * pooled, a[2] + 4 * start * image, a[3] + 4 * start * pooled,
        end - start, a[4], a[5], a[6]);
    } else if (op === ${Op.Adam}) {
      const f = ${ARGS + 4};
      const offset = 4 * start;
      kernels.adamStep(a[0] + offset, a[1] + offset, a[2] + offset, a[3] + offset, end - start,
        floats[f], floats[f + 1], floats[f + 2], floats[f + 3], floats[f + 4], floats[f + 5]);
    } else if (op === ${Op.WinogradWeight}) {
      kernels.winogradWeight(partial, a[1], a[2], start, end, a[3], a[4], a[5], a[6], columns, scratch, a[7]);
    }
    if (Atomics.sub(control, ${PENDING}, 1) === 1) Atomics.notify(control, ${PENDING});
  }
}`;

/** Where the per-thread buffers are, set before each job that needs them. */
export interface ThreadBuffers {
  scratch: number;
  scratchBytes: number;
  columns: number;
  columnsBytes: number;
  partials: number;
  partialsBytes: number;
}

export class ThreadPool {
  private readonly control: Int32Array;
  private readonly floats: Float32Array;

  private constructor(
    memory: WebAssembly.Memory,
    /** Threads in all, the calling one included. */
    readonly threads: number,
    private readonly workers: { terminate(): unknown }[],
  ) {
    this.control = new Int32Array(memory.buffer, 0, CONTROL_BYTES / 4);
    this.floats = new Float32Array(memory.buffer, 0, CONTROL_BYTES / 4);
  }

  static async start(threads: number, init: Omit<WorkerInit, 'index'>, spawn: SpawnWorker): Promise<ThreadPool> {
    const workers = await Promise.all(Array.from({ length: threads - 1 }, (_, i) => spawn({ ...init, index: i + 1 })));
    return new ThreadPool(init.memory, threads, workers);
  }

  /**
   * Runs `op` on every thread, thread i taking [i · chunk, (i + 1) · chunk) of total;
   * `runOwnPart(start, end)` does the calling thread's part. Returns when all are done.
   */
  run(
    op: Op, args: readonly number[], total: number, chunk: number, buffers: ThreadBuffers, runOwnPart: (start: number, end: number) => void,
    /** Float arguments, stored as float32 after `args`. */
    floatArgs: readonly number[] = [],
  ): void {
    const control = this.control;
    for (let i = 0; i < args.length; i++) control[ARGS + i] = args[i];
    for (let i = 0; i < floatArgs.length; i++) this.floats[ARGS + args.length + i] = floatArgs[i];
    control[TOTAL] = total;
    control[CHUNK] = chunk;
    control[SCRATCH] = buffers.scratch;
    control[SCRATCH_BYTES] = buffers.scratchBytes;
    control[COLUMNS] = buffers.columns;
    control[COLUMNS_BYTES] = buffers.columnsBytes;
    control[PARTIALS] = buffers.partials;
    control[PARTIALS_BYTES] = buffers.partialsBytes;
    Atomics.store(control, OPERATION, op);
    Atomics.store(control, PENDING, this.threads - 1);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    runOwnPart(0, Math.min(total, chunk));
    // The other threads' parts are about as long as ours: spinning beats sleeping here.
    while (Atomics.load(control, PENDING) !== 0);
  }

  stop(): void {
    Atomics.store(this.control, OPERATION, Op.Stop);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    for (const worker of this.workers) worker.terminate();
  }
}
