/**
 * Worker threads that run the module's functions on parts of a shared WebAssembly memory: row
 * ranges of a matrix product, image ranges of a convolution, ranges of an elementwise kernel.
 * The calling thread writes each worker's call (which function, its arguments) into the
 * control block at the start of the memory and bumps a generation counter; each worker
 * decodes its own call the same way whatever the function, so the worker knows nothing of any
 * kernel. Handing work over costs about a microsecond when the worker is spinning on the
 * control block (Atomics), against tens of microseconds through Atomics.wait/notify or
 * postMessage; a worker spins for a while after each job, then sleeps in Atomics.wait.
 *
 * Uses only what browsers have too (WebAssembly, Atomics); the caller supplies the function
 * that starts a worker (worker_threads in Node, Web Workers in a browser).
 */

/** Int32 slots of the control block's header. */
const GENERATION = 0;
const PENDING = 1;
const HEADER_INTS = 4;
/** Each thread's call: the function's index + 1 (0: nothing to do, -1: stop), the argument count, which arguments are floats (a bit each), the arguments. */
const MAX_ARGS = 16;
const SLOT_INTS = 3 + MAX_ARGS;
/** Threads a pool may have, the calling one included. */
export const MAX_THREADS = 64;
/** Bytes at the start of the memory that the control block may use (scripts/build-wasm.mjs keeps the module's data above them). */
export const CONTROL_BYTES = 8192;
const CONTROL_INTS = CONTROL_BYTES / 4;
if ((HEADER_INTS + MAX_THREADS * SLOT_INTS) * 4 > CONTROL_BYTES) throw new Error('the control block does not fit its bytes');
/**
 * How long an idle worker keeps spinning before it sleeps. The MLP's step leaves the worker idle
 * for 50-100 us between its two large products; after a 0.05 ms spin it slept, and waking it
 * cost the second product its speed-up (2 threads no faster than 1). See docs/performance.md.
 */
const SPIN_MILLISECONDS = 2;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** The module's functions a call may name, by index. */
  functions: readonly string[];
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
  const { module, memory, index, functions } = init;
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const table = functions.map((name) => exports[name]);
  const control = new Int32Array(memory.buffer, 0, ${CONTROL_INTS});
  // The same slots read as floats, for arguments that are not whole numbers.
  const floats = new Float32Array(memory.buffer, 0, ${CONTROL_INTS});
  const slot = ${HEADER_INTS} + index * ${SLOT_INTS};
  const args = [];
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
    const call = control[slot];
    if (call < 0) return;
    if (call > 0) {
      const count = control[slot + 1];
      const floatMask = control[slot + 2];
      args.length = count;
      for (let i = 0; i < count; i++) args[i] = (floatMask >> i) & 1 ? floats[slot + 3 + i] : control[slot + 3 + i];
      table[call - 1].apply(null, args);
    }
    if (Atomics.sub(control, ${PENDING}, 1) === 1) Atomics.notify(control, ${PENDING});
  }
}`;

/** A call of one of the module's functions: its arguments, and which are floats (a bit each). */
export interface ThreadCall {
  args: readonly number[];
  floatMask: number;
}

export class ThreadPool {
  private readonly control: Int32Array;
  private readonly floats: Float32Array;
  private readonly index: Map<string, number>;

  private constructor(
    memory: WebAssembly.Memory,
    /** Threads in all, the calling one included. */
    readonly threads: number,
    functions: readonly string[],
    private readonly workers: { terminate(): unknown }[],
  ) {
    this.control = new Int32Array(memory.buffer, 0, CONTROL_INTS);
    this.floats = new Float32Array(memory.buffer, 0, CONTROL_INTS);
    this.index = new Map(functions.map((name, i) => [name, i]));
  }

  static async start(threads: number, init: Omit<WorkerInit, 'index'>, spawn: SpawnWorker): Promise<ThreadPool> {
    if (threads > MAX_THREADS) throw new RangeError(`the wasm backend runs at most ${MAX_THREADS} threads, asked for ${threads}`);
    const workers = await Promise.all(Array.from({ length: threads - 1 }, (_, i) => spawn({ ...init, index: i + 1 })));
    return new ThreadPool(init.memory, threads, init.functions, workers);
  }

  /**
   * Calls function `name` on every thread at once, thread t with `callOf(t)`'s arguments (none
   * when it gives null); `own` makes the calling thread's call (thread 0's). Returns when all
   * are done.
   */
  run(name: string, callOf: (thread: number) => ThreadCall | null, own: () => void): void {
    const fn = this.index.get(name);
    if (fn === undefined) throw new Error(`the wasm module has no function ${name} for its threads`);
    const control = this.control;
    for (let thread = 1; thread < this.threads; thread++) {
      const slot = HEADER_INTS + thread * SLOT_INTS;
      const call = callOf(thread);
      if (!call) {
        control[slot] = 0;
        continue;
      }
      if (call.args.length > MAX_ARGS) throw new Error(`${name} takes ${call.args.length} arguments; a thread's call holds at most ${MAX_ARGS}`);
      control[slot] = fn + 1;
      control[slot + 1] = call.args.length;
      control[slot + 2] = call.floatMask;
      call.args.forEach((value, i) => {
        if ((call.floatMask >> i) & 1) this.floats[slot + 3 + i] = value;
        else control[slot + 3 + i] = value;
      });
    }
    Atomics.store(control, PENDING, this.threads - 1);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    own();
    // The other threads' parts are about as long as ours: spinning beats sleeping here.
    while (Atomics.load(control, PENDING) !== 0);
  }

  stop(): void {
    for (let thread = 1; thread < this.threads; thread++) this.control[HEADER_INTS + thread * SLOT_INTS] = -1;
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    for (const worker of this.workers) worker.terminate();
  }
}
