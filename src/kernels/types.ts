/**
 * The types derived from the kernel declarations (spec.ts): the `Kernels` interface every
 * backend implements and layers call with named arguments, and the shapes of the WebAssembly
 * module's and the native addon's exports.
 */
import type { ArgType, KERNELS, NATIVE_RAW, WASM_RAW } from './spec.ts';

/** Names of the kernel backends: `js`, the plain TypeScript reference; `wasm`, WebAssembly SIMD; `native`, C (a Node-API addon). */
export type BackendName = 'js' | 'wasm' | 'native';

/** An argument list `name: type, name: type` as a tuple of [name, type] pairs, in order. */
export type ParseArgs<S extends string> = S extends ''
  ? []
  : S extends `${infer Name}: ${infer Type}, ${infer Rest}`
    ? [[Name, Type], ...ParseArgs<Rest>]
    : S extends `${infer Name}: ${infer Type}`
      ? [[Name, Type]]
      : never;

/** What a JavaScript caller passes for an argument type. */
type ArgValue<T> = T extends 'floats' | 'floats out' ? Float32Array : T extends 'bytes' ? Uint8Array : T extends 'ints' | 'ints counted' ? Int32Array : T extends 'bool' ? boolean : T extends ArgType ? number : never;

/** The named arguments of a declaration. */
type NamedArgs<S extends string> = { [Pair in ParseArgs<S>[number] as Pair[0]]: ArgValue<Pair[1]> };

/** The arguments of kernel K, by name. */
export type KernelArgs<K extends keyof typeof KERNELS> = NamedArgs<(typeof KERNELS)[K]['args']>;

type KernelResult<S> = S extends { result: 'number' } ? number : void;

/**
 * The numeric kernels every layer, loss and optimiser runs on, each taking its arguments by
 * name (see spec.ts for what each computes), and the backend's buffers.
 */
export type Kernels = {
  readonly name: BackendName;
  /** What runs, for messages: e.g. `wasm (relaxed SIMD, 2 threads)`. */
  readonly description: string;
  /** A zero-filled buffer of `length` floats that every kernel of this backend accepts. */
  allocate(length: number): Float32Array;
  /**
   * Gives back a buffer from `allocate` (the array itself, not a subarray of it), which must not
   * be used afterwards. Every buffer has an owner that releases it when done or reuses it; where
   * the backend's memory is the garbage collector's (js, native) this does nothing.
   */
  release(buffer: Float32Array): void;
} & { readonly [K in keyof typeof KERNELS]: (args: KernelArgs<K>) => KernelResult<(typeof KERNELS)[K]> };

/** The kernels the WebAssembly module exports under their own names (wasm: 'direct' or a split). */
export type WasmDirectKernel = { [K in keyof typeof KERNELS]: (typeof KERNELS)[K]['wasm'] extends 'custom' ? never : K }[keyof typeof KERNELS];

/** Pointers are byte offsets into the module's memory. (A mapped type over a type parameter keeps a tuple a tuple.) */
type WasmValues<Pairs> = { [I in keyof Pairs]: Pairs[I] extends [string, infer T] ? (T extends 'bool' ? boolean | number : number) : never };
type WasmArgs<S extends string> = WasmValues<ParseArgs<S>>;

type RawResult<S> = S extends { result: 'int' | 'ptr' | 'number' } ? number : void;

/** The WebAssembly module's exports: its direct kernels and the raw functions of WASM_RAW. */
export type WasmExports = { [K in WasmDirectKernel]: (...args: WasmArgs<(typeof KERNELS)[K]['args']>) => KernelResult<(typeof KERNELS)[K]> } & {
  [K in keyof typeof WASM_RAW]: (...args: WasmArgs<(typeof WASM_RAW)[K]['args']>) => RawResult<(typeof WASM_RAW)[K]>;
};

/** The kernels the native addon exports under their own names (native: 'direct'). */
export type NativeDirectKernel = { [K in keyof typeof KERNELS]: (typeof KERNELS)[K]['native'] extends 'custom' ? never : K }[keyof typeof KERNELS];

/** A native function's positional arguments: typed arrays in place, numbers, booleans. */
type NativeValues<Pairs> = { [I in keyof Pairs]: Pairs[I] extends [string, infer T] ? ArgValue<T> : never };
type NativeArgs<S extends string> = NativeValues<ParseArgs<S>>;

/** The native addon's exports: its direct kernels and NATIVE_RAW, positionally. */
export type NativeExports = { [K in NativeDirectKernel]: (...args: NativeArgs<(typeof KERNELS)[K]['args']>) => KernelResult<(typeof KERNELS)[K]> } & {
  [K in keyof typeof NATIVE_RAW]: (...args: NativeArgs<(typeof NATIVE_RAW)[K]['args']>) => RawResult<(typeof NATIVE_RAW)[K]>;
};
