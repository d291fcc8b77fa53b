/**
 * The WebGPU backend in Node: a device from the `webgpu` package (Dawn, Chromium's WebGPU, over
 * Vulkan on Linux). It needs a Vulkan loader (Debian: libvulkan1) and a driver: a GPU's, or
 * SwiftShader's on the CPU (Debian's chromium ships one: VK_DRIVER_FILES=SWIFTSHADER_DRIVER), which
 * the tests use. Where there is none, loading stops with one sentence saying what is missing.
 */
import { existsSync, readdirSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import { createWebGpuKernels, describeAdapter, requiredLimits, type WebGpuKernels, type WebGpuOptions } from './backend.ts';

/** Debian's chromium ships SwiftShader's Vulkan driver here: WebGPU on the CPU, for tests (slow). */
export const SWIFTSHADER_DRIVER = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Where the Vulkan loader looks for drivers' manifests on Linux. */
const DRIVER_FOLDERS = ['/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/nvidia/share/vulkan/icd.d'];

const ADVICE = 'choose --backend native or wasm';

/** Why no Vulkan driver can be found here, or null where one may be (checked before Dawn starts, which would print its own failures). */
function missingVulkan(): string | null {
  if (process.platform !== 'linux') return null;
  const loader = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib/libvulkan.so.1', '/usr/lib64/libvulkan.so.1'].some((path) => existsSync(path));
  if (!loader && !process.env.LD_LIBRARY_PATH) return 'there is no Vulkan loader (Debian: apt-get install libvulkan1)';
  const named = [process.env.VK_DRIVER_FILES, process.env.VK_ICD_FILENAMES].filter((value): value is string => Boolean(value));
  if (named.length > 0) {
    const files = named.flatMap((value) => value.split(':')).filter((file) => file !== '');
    return files.some((file) => existsSync(file)) ? null : `the Vulkan driver named by VK_DRIVER_FILES does not exist (${files.join(', ')})`;
  }
  const drivers = DRIVER_FOLDERS.filter((folder) => existsSync(folder) && readdirSync(folder).some((file) => file.endsWith('.json')));
  if (drivers.length > 0) return null;
  return `no Vulkan driver is installed (no GPU driver in ${DRIVER_FOLDERS[0]}; for a test on the CPU, set VK_DRIVER_FILES=${SWIFTSHADER_DRIVER} after apt-get install chromium)`;
}

let shared: Promise<WebGpuKernels> | null = null;

/**
 * The WebGPU backend on this machine's adapter (a high-performance one where there are
 * several): one device per process, shared by every caller until one closes it.
 */
export function loadWebGpuKernels(options: WebGpuOptions = {}): Promise<WebGpuKernels> {
  if (options.products !== undefined) return openDevice(options);
  shared ??= openDevice({}).then(
    (kernels) => ({
      ...kernels,
      close() {
        shared = null;
        kernels.close();
      },
    }),
    (error: unknown) => {
      shared = null;
      throw error;
    },
  );
  return shared;
}

/** A device of its own (the shared one serves callers with the default options). */
async function openDevice(options: WebGpuOptions): Promise<WebGpuKernels> {
  const missing = missingVulkan();
  if (missing) throw new UsageError(`The webgpu backend found no GPU: ${missing}; ${ADVICE}.`);
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch {
    throw new UsageError(`The webgpu backend in Node needs the webgpu package (npm install webgpu@0.6.2); ${ADVICE}.`);
  }
  // GPUBufferUsage, GPUMapMode and the other constants the browser has as globals.
  for (const [name, value] of Object.entries(webgpu.globals)) if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  let gpu = webgpu.create([]);
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new UsageError(`The webgpu backend found no WebGPU adapter (Vulkan found no device); ${ADVICE}.`);
  if (describeAdapter(adapter).onCpu) {
    // SwiftShader runs the shaders on the CPU, where Dawn's robust buffer access (every load and
    // store clamped to its binding) took half the time of a training step; the kernel suite checks
    // every kernel's bounds on it.
    gpu = webgpu.create(['enable-dawn-features=disable_robustness']);
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new UsageError(`The webgpu backend found no WebGPU adapter (Vulkan found no device); ${ADVICE}.`);
  }
  const device = await adapter.requestDevice({ requiredLimits: requiredLimits(adapter) });
  // Dawn's objects need the GPU object that made them: the kernels keep it.
  return createWebGpuKernels(device, describeAdapter(adapter), options, gpu);
}
