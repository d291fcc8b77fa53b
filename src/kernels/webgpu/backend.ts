/**
 * The WebGPU backend: every kernel of spec.ts as WGSL compute shaders on a GPU, its tensors in
 * the GPU's memory. Kernels come two ways, as their declaration says: one shader over the
 * declared arguments (programs.ts), or several dispatches and host work (custom.ts). Calls are
 * recorded and submitted in order (engine.ts); only `read` waits for the device. Uses no
 * Node-only API: the browser's navigator.gpu and Node's `webgpu` package give the device.
 */
import { KERNELS } from '../spec.ts';
import type { Kernels, KernelsOver, WebGpuDirectKernel } from '../types.ts';
import { customKernels } from './custom.ts';
import { Engine, type GpuTensor } from './engine.ts';
import { PROGRAMS } from './programs.ts';
import type { ProductStyle } from './raw.ts';

/** What the adapter says it is, for messages and summaries. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Whether it is a fallback adapter: WebGPU emulated on the CPU (SwiftShader). */
  onCpu: boolean;
}

export interface WebGpuOptions {
  /** How the matrix products and convolutions run (raw.ts): default `direct` on a fallback adapter (a CPU), else `tiled`. */
  products?: ProductStyle;
}

export interface WebGpuKernels extends Kernels {
  readonly adapter: AdapterDescription;
  /** Submits the work recorded so far without waiting for it. */
  flush(): void;
  /** Frees the device and its buffers; the kernels must not be used afterwards. */
  close(): void;
}

/** The limits a device is asked for: the adapter's own, where they exceed WebGPU's defaults. */
export function requiredLimits(adapter: GPUAdapter): Record<string, number> {
  const names = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const;
  return Object.fromEntries(names.map((name) => [name, adapter.limits[name]]));
}

/** The adapter's description (fields it leaves empty stay empty). */
export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const fallback = info.isFallbackAdapter ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  return { vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '', onCpu: fallback || info.architecture === 'swiftshader' };
}

/** How a run names its adapter: `webgpu (nvidia hopper)`, `webgpu (google swiftshader: SwiftShader driver 5.0.0)`. */
export function adapterName(adapter: AdapterDescription): string {
  const what = [adapter.vendor, adapter.architecture].filter((part) => part !== '').join(' ') || 'unnamed adapter';
  return adapter.description ? `${what}: ${adapter.description}` : what;
}

/**
 * The backend on `device`. `keepAlive` is held for as long as the kernels are: in Node, the GPU
 * object that made the device, which must outlive it.
 */
export function createWebGpuKernels(device: GPUDevice, adapter: AdapterDescription, options: WebGpuOptions = {}, keepAlive?: unknown): WebGpuKernels {
  const engine = new Engine(device);
  const products = options.products ?? (adapter.onCpu ? 'direct' : 'tiled');
  const direct = Object.fromEntries(
    (Object.keys(KERNELS) as (keyof typeof KERNELS)[])
      .filter((name): name is WebGpuDirectKernel => KERNELS[name].webgpu === 'direct')
      .map((name) => [name, (named: Record<string, unknown>) => engine.dispatch(PROGRAMS[name], named)]),
  );
  const kernels: KernelsOver<GpuTensor> = {
    name: 'webgpu',
    description: `webgpu (${adapterName(adapter)}${products !== (adapter.onCpu ? 'direct' : 'tiled') ? `; ${products} products` : ''})`,
    device: 'gpu',
    allocate: (length) => engine.allocate(length),
    release: (tensor) => engine.release(tensor),
    write: (target, source, offset) => engine.write(target, source, offset),
    read: (source) => engine.read(source),
    ...(direct as unknown as Omit<KernelsOver<GpuTensor>, 'name' | 'description' | 'device' | 'allocate' | 'release' | 'write' | 'read' | keyof ReturnType<typeof customKernels>>),
    ...customKernels(engine, products),
  };
  return {
    ...(kernels as unknown as Kernels),
    adapter,
    flush: () => engine.flush(),
    close() {
      engine.destroy();
      void keepAlive;
    },
  };
}
