/**
 * Worker threads that run kernels on row ranges of a shared WebAssembly memory. Handing work
 * over costs about a microsecond when the worker is spinning on the control block (Atomics),
 * against tens of microseconds through Atomics.wait/notify or postMessage; a worker spins
 * for a while after each job, then sleeps in Atomics.wait.
 *
 * Uses only what browsers have too (WebAssembly, Atomics); the caller supplies the function
 * that starts a worker (worker_threads in Node, Web Workers in a browser).
 */

/** Int32 slots of the control block at the start of the memory. */
const GENERATION = 0;
const PENDING = 1;
const OPERATION = 2;
const ARGS = 4;
export const CONTROL_BYTES = 256;

/** Operation codes shared with WORKER_BODY. */
export const OP_STOP = 0;
export const OP_GEMM = 1;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** This worker's index; the calling thread is 0. */
  index: number;
  /** Byte offset of the first thread's gemm scratch; thread i uses scratch + i * scratchBytes. */
  scratch: number;
  scratchBytes: number;
}

/** Starts one worker running WORKER_BODY with `init`; resolves once it reports ready. */
export type SpawnWorker = (init: WorkerInit) => Promise<{ terminate(): unknown }>;

/**
 * The worker's program, as source text so it can start from a string in Node (eval) and from a
 * Blob in a browser: `(${WORKER_BODY})(init, ready)`. Plain JavaScript, no imports.
 */
export const WORKER_BODY = `function (init, ready) {
  const { module, memory, index, scratch, scratchBytes } = init;
  const kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const control = new Int32Array(memory.buffer, 0, ${CONTROL_BYTES / 4});
  let seen = Atomics.load(control, ${GENERATION});
  ready();
  for (;;) {
    let spins = 0;
    while (Atomics.load(control, ${GENERATION}) === seen) {
      if (++spins > 200000) {
        Atomics.wait(control, ${GENERATION}, seen);
        spins = 0;
      }
    }
    seen = Atomics.load(control, ${GENERATION});
    const op = Atomics.load(control, ${OPERATION});
    if (op === ${OP_STOP}) return;
    if (op === ${OP_GEMM}) {
      const [n, k, a, rsA, csA, b, rsB, csB, c, accumulate, m, chunk] = control.subarray(${ARGS}, ${ARGS + 12});
      const start = Math.min(m, index * chunk);
      const end = Math.min(m, start + chunk);
      kernels.gemm(n, k, a, rsA, csA, b, rsB, csB, c, accumulate, start, end, scratch + index * scratchBytes);
    }
    if (Atomics.sub(control, ${PENDING}, 1) === 1) Atomics.notify(control, ${PENDING});
  }
}`;

export class ThreadPool {
  private readonly control: Int32Array;

  private constructor(
    memory: WebAssembly.Memory,
    /** Threads in all, the calling one included. */
    readonly threads: number,
    private readonly workers: { terminate(): unknown }[],
  ) {
    this.control = new Int32Array(memory.buffer, 0, CONTROL_BYTES / 4);
  }

  static async start(threads: number, init: Omit<WorkerInit, 'index'>, spawn: SpawnWorker): Promise<ThreadPool> {
    const workers = await Promise.all(Array.from({ length: threads - 1 }, (_, i) => spawn({ ...init, index: i + 1 })));
    return new ThreadPool(init.memory, threads, workers);
  }

  /**
   * Runs a gemm on every thread, thread i taking rows [i * chunk, (i + 1) * chunk) of m;
   * `runOwnPart(start, end)` does the calling thread's rows. Returns when all are done.
   */
  gemm(args: readonly number[], m: number, chunk: number, runOwnPart: (start: number, end: number) => void): void {
    const control = this.control;
    for (let i = 0; i < args.length; i++) control[ARGS + i] = args[i];
    control[ARGS + args.length] = m;
    control[ARGS + args.length + 1] = chunk;
    Atomics.store(control, OPERATION, OP_GEMM);
    Atomics.store(control, PENDING, this.threads - 1);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    runOwnPart(0, Math.min(m, chunk));
    // The other threads' parts are about as long as ours: spinning beats sleeping here.
    while (Atomics.load(control, PENDING) !== 0);
  }

  stop(): void {
    Atomics.store(this.control, OPERATION, OP_STOP);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    for (const worker of this.workers) worker.terminate();
  }
}
