/**
 * The WebGPU backend in a browser (the web app's page and its training worker): a device from
 * navigator.gpu, where the browser gives an adapter. The counterpart of node.ts, with the same
 * kernels (backend.ts).
 */
import { createWebGpuKernels, describeAdapter, requiredLimits, type AdapterDescription, type WebGpuKernels } from './backend.ts';

/** navigator.gpu where this browser has WebGPU (pages, and dedicated workers), else undefined. */
const browserGpu = (): GPU | undefined => (globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined)?.gpu;

/** The adapter WebGPU would use here, described; null where there is no WebGPU or no adapter. */
export async function browserAdapter(): Promise<AdapterDescription | null> {
  try {
    const adapter = await browserGpu()?.requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? describeAdapter(adapter) : null;
  } catch {
    return null;
  }
}

/** The WebGPU backend on this browser's adapter; throws a sentence where there is none. */
export async function loadBrowserWebGpuKernels(): Promise<WebGpuKernels> {
  const gpu = browserGpu();
  if (!gpu) throw new Error('this browser has no WebGPU (navigator.gpu); choose WebAssembly');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('WebGPU found no adapter here; choose WebAssembly');
  const device = await adapter.requestDevice({ requiredLimits: requiredLimits(adapter) });
  return createWebGpuKernels(device, describeAdapter(adapter));
}
