/**
 * The types derived from the kernel declarations (spec.ts): the `Kernels` interface every
 * backend implements and layers call with named arguments, and the shapes of the WebAssembly
 * module's and the native addon's exports.
 */
import type { ArgType, KERNELS, NATIVE_RAW, WASM_RAW } from './spec.ts';

/** Names of the kernel backends: `js`, the plain TypeScript reference; `wasm`, WebAssembly SIMD; `native`, C (a Node-API addon); `webgpu`, WGSL compute shaders on a GPU. */
export type BackendName = 'js' | 'wasm' | 'native' | 'webgpu';

/** Every backend's name, for flags and forms (declared here, beside the type, so that the browser can import it without the Node loaders of index.ts). */
export const BACKEND_NAMES: readonly BackendName[] = ['js', 'wasm', 'native', 'webgpu'];

/**
 * A backend's array of floats, in the memory its kernels run in: on the CPU backends a
 * Float32Array, on webgpu a range of a GPU buffer. Kernels read and write tensors; the host
 * reads one with `Kernels.read` and writes one with `Kernels.write`, so that code written
 * against this type runs on every backend. A subarray shares its tensor's memory.
 */
export interface Tensor {
  readonly length: number;
  subarray(begin: number, end?: number): Tensor;
}

/** An argument list `name: type, name: type` as a tuple of [name, type] pairs, in order. */
export type ParseArgs<S extends string> = S extends ''
  ? []
  : S extends `${infer Name}: ${infer Type}, ${infer Rest}`
    ? [[Name, Type], ...ParseArgs<Rest>]
    : S extends `${infer Name}: ${infer Type}`
      ? [[Name, Type]]
      : never;

/**
 * What a JavaScript caller passes for an argument type: floats as the backend's tensors (F),
 * bytes and ints as arrays of the host's memory, which a kernel only reads and a GPU backend
 * copies to the device with the call.
 */
type ArgValue<T, F> = T extends 'floats' | 'floats out' ? F : T extends 'bytes' ? Uint8Array : T extends 'ints' | 'ints counted' ? Int32Array : T extends 'bool' ? boolean : T extends ArgType ? number : never;

/** The named arguments of a declaration. */
type NamedArgs<S extends string, F> = { [Pair in ParseArgs<S>[number] as Pair[0]]: ArgValue<Pair[1], F> };

/** The arguments of kernel K, by name, with floats as tensors of type F. */
export type KernelArgs<K extends keyof typeof KERNELS, F = Tensor> = NamedArgs<(typeof KERNELS)[K]['args'], F>;

/**
 * A backend over tensors of type F: the numeric kernels every layer, loss and optimiser runs on,
 * each taking its arguments by name (see spec.ts for what each computes), and the tensors'
 * memory: allocation with an explicit end, and the host's reads and writes.
 */
export type KernelsOver<F> = {
  readonly name: BackendName;
  /** What runs, for messages: e.g. `wasm (relaxed SIMD, 2 threads)`. */
  readonly description: string;
  /** Where the tensors live: `cpu`, the host's memory (reads cost a copy); `gpu`, a device's (reads wait for it). */
  readonly device: 'cpu' | 'gpu';
  /** A zero-filled tensor of `length` floats. */
  allocate(length: number): F;
  /**
   * Gives back a tensor from `allocate` (the tensor itself, not a subarray of it), which must
   * not be used afterwards. Every tensor has an owner that releases it when done or reuses it;
   * where the memory is the garbage collector's (js, native) this does nothing.
   */
  release(tensor: F): void;
  /** Copies `source` into `target` from element `offset` on (default 0), in order with the kernels called before and after. */
  write(target: F, source: Float32Array, offset?: number): void;
  /**
   * A copy of the tensor's elements in the host's memory, once every kernel called before has
   * run. On a GPU this waits for the device: read what a person sees (figures once per
   * progress line, saved weights), not every step.
   */
  read(source: F): Promise<Float32Array>;
} & { readonly [K in keyof typeof KERNELS]: (args: KernelArgs<K, F>) => void };

/** A backend, as layers, models and training use it. */
export type Kernels = KernelsOver<Tensor>;

/**
 * A CPU backend: its tensors are Float32Arrays that any code may read and write in place
 * (the reference, and the kernels that the fast backends take from it).
 */
export type HostKernels = KernelsOver<Float32Array>;

/** The kernels the WebAssembly module exports under their own names (wasm: 'direct' or a split). */
export type WasmDirectKernel = { [K in keyof typeof KERNELS]: (typeof KERNELS)[K]['wasm'] extends 'custom' | 'reference' ? never : K }[keyof typeof KERNELS];

/** The kernels the WebAssembly backend writes out over the module's raw functions (wasm: 'custom'; wasm/custom.ts). */
export type WasmCustomKernel = { [K in keyof typeof KERNELS]: (typeof KERNELS)[K]['wasm'] extends 'custom' ? K : never }[keyof typeof KERNELS];
export type WasmCustomKernels = Pick<HostKernels, WasmCustomKernel>;

/** The kernels the WebGPU backend runs as one compute shader each (webgpu: 'direct'; webgpu/programs.ts), and those it writes out (webgpu/custom.ts). */
export type WebGpuDirectKernel = { [K in keyof typeof KERNELS]: (typeof KERNELS)[K]['webgpu'] extends 'direct' ? K : never }[keyof typeof KERNELS];
export type WebGpuCustomKernel = Exclude<keyof typeof KERNELS, WebGpuDirectKernel>;

/** Pointers are byte offsets into the module's memory. (A mapped type over a type parameter keeps a tuple a tuple.) */
type WasmValues<Pairs> = { [I in keyof Pairs]: Pairs[I] extends [string, infer T] ? (T extends 'bool' ? boolean | number : number) : never };
type WasmArgs<S extends string> = WasmValues<ParseArgs<S>>;

type RawResult<S> = S extends { result: 'int' | 'ptr' | 'number' } ? number : void;

/** The WebAssembly module's exports: its direct kernels and the raw functions of WASM_RAW. */
export type WasmExports = { [K in WasmDirectKernel]: (...args: WasmArgs<(typeof KERNELS)[K]['args']>) => void } & {
  [K in keyof typeof WASM_RAW]: (...args: WasmArgs<(typeof WASM_RAW)[K]['args']>) => RawResult<(typeof WASM_RAW)[K]>;
};

/** The kernels the native addon exports under their own names (native: 'direct'). */
export type NativeDirectKernel = { [K in keyof typeof KERNELS]: (typeof KERNELS)[K]['native'] extends 'custom' | 'reference' ? never : K }[keyof typeof KERNELS];

/** A native function's positional arguments: typed arrays in place, numbers, booleans. */
type NativeValues<Pairs> = { [I in keyof Pairs]: Pairs[I] extends [string, infer T] ? ArgValue<T, Float32Array> : never };
type NativeArgs<S extends string> = NativeValues<ParseArgs<S>>;

/** The native addon's exports: its direct kernels and NATIVE_RAW, positionally. */
export type NativeExports = { [K in NativeDirectKernel]: (...args: NativeArgs<(typeof KERNELS)[K]['args']>) => void } & {
  [K in keyof typeof NATIVE_RAW]: (...args: NativeArgs<(typeof NATIVE_RAW)[K]['args']>) => RawResult<(typeof NATIVE_RAW)[K]>;
};
