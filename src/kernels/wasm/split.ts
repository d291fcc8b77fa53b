/**
 * How the WebAssembly backend splits a call of the module over its threads: by a declaration's
 * split (an elementwise or row range, spec.ts), by images (the convolutions), and the partial
 * sums that the workers add into a buffer of their own, added in thread order after.
 */
import type { Arg, ArgType, Split, StrideTerm } from '../spec.ts';
import type { WasmExports } from '../types.ts';
import type { ThreadCall, ThreadPool } from './pool.ts';
import type { PerThreadBlock } from './staging.ts';

/** Kernels split over the threads from this many floats on. */
const PARALLEL_MIN_FLOATS = 32_768;

/** A module function called with raw arguments: numbers, pointers and booleans in declaration order. */
export type RawFunction = (...args: (number | boolean)[]) => number | undefined;

const elementBytes = (type: ArgType): number => (type === 'bytes' ? 1 : 4);

/** Which of a function's arguments are floats, as the pool's bit mask. */
const floatMask = (args: Arg[]): number => args.reduce((mask, arg, i) => (arg.type === 'float' ? mask | (1 << i) : mask), 0);

/** A stride's elements for these arguments: the product of its terms. */
const strideOf = (terms: StrideTerm[], values: Record<string, number>): number =>
  terms.reduce<number>((product, term) => product * (typeof term === 'number' ? term : typeof term === 'string' ? values[term] : values[term.half] >> 1), 1);

export class Splitter {
  constructor(
    private readonly wasm: WasmExports,
    private readonly callable: Record<string, RawFunction>,
    /** The worker threads; null with one thread. */
    readonly pool: ThreadPool | null,
    /** Each thread's partial sums. */
    readonly partials: PerThreadBlock,
  ) {}

  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /**
   * target[0..floats) += the workers' partials (threads 1, 2, ...), in thread order so that a run
   * repeats exactly; addBias over one row of `floats` columns is that sum.
   */
  addWorkerPartials(target: number, floats: number): void {
    for (let thread = 1; thread < this.threads; thread++) this.wasm.addBias(target, this.partials.of(thread), 1, floats);
  }

  /**
   * Calls `name` with `raw` (its arguments in order, arrays as pointers), split over the threads
   * as `split` says when the call touches at least PARALLEL_MIN_FLOATS floats.
   */
  call(name: string, args: Arg[], raw: (number | boolean)[], split: Split): void {
    const { pool, partials } = this;
    const values = Object.fromEntries(args.map((arg, i) => [arg.name, raw[i] as number]));
    const total = values[split.over];
    const strides = args.map((arg) => (split.stride[arg.name] ? strideOf(split.stride[arg.name], values) * elementBytes(arg.type) : 0));
    const floats = total * Math.max(1, ...args.map((arg) => (split.stride[arg.name] ? strideOf(split.stride[arg.name], values) : 0)));
    if (!pool || total < 2 || floats < PARALLEL_MIN_FLOATS) {
      this.callable[name](...raw);
      return;
    }
    const align = split.align ?? 1;
    const chunk = Math.ceil(total / pool.threads / align) * align;
    const reduced = split.reduce === undefined ? -1 : args.findIndex((arg) => arg.name === split.reduce);
    const reduceFloats = split.reduceSize ? strideOf(split.reduceSize, values) : 0;
    if (reduced >= 0) {
      partials.reserve(reduceFloats * 4);
      for (let thread = 1; thread < pool.threads; thread++) this.wasm.zero(partials.of(thread), reduceFloats);
    }
    const mask = floatMask(args);
    const part = (thread: number): (number | boolean)[] | null => {
      const start = Math.min(total, thread * chunk);
      const end = Math.min(total, start + chunk);
      if (end <= start) return null;
      return raw.map((value, i) => {
        if (i === reduced && thread > 0) return partials.of(thread);
        if (args[i].name === split.over) return end - start;
        return strides[i] > 0 ? (value as number) + start * strides[i] : value;
      });
    };
    pool.run(
      name,
      (thread) => {
        const call = part(thread);
        return call && ({ args: call.map(Number), floatMask: mask } satisfies ThreadCall);
      },
      () => {
        const own = part(0);
        if (own) this.callable[name](...own);
      },
    );
    if (reduced >= 0) this.addWorkerPartials(raw[reduced] as number, reduceFloats);
  }

  /**
   * Splits the batch: each thread calls `name` with `argsOf(thread, start, end)` on whole images
   * (with its own buffers). Returns the threads used.
   */
  byImages(name: string, batch: number, argsOf: (thread: number, start: number, end: number) => number[]): number {
    const { pool } = this;
    if (!pool || batch < 2) {
      this.callable[name](...argsOf(0, 0, batch));
      return 1;
    }
    const chunk = Math.ceil(batch / pool.threads);
    const range = (thread: number): [number, number] => [Math.min(batch, thread * chunk), Math.min(batch, (thread + 1) * chunk)];
    pool.run(
      name,
      (thread) => ({ args: argsOf(thread, ...range(thread)), floatMask: 0 }),
      () => this.callable[name](...argsOf(0, ...range(0))),
    );
    return pool.threads;
  }
}
