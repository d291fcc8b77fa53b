import { UsageError } from '../errors.ts';
import { jsKernels } from './js.ts';
import { DEFAULT_ADDON_PATH, loadNativeKernels, nativeBuildPresent } from './native/node.ts';
import { BACKEND_NAMES, type BackendName, type Kernels } from './types.ts';
import { loadWasmKernels, wasmBuildPresent } from './wasm/node.ts';

export type { BackendName, HostKernels, KernelArgs, Kernels, Tensor } from './types.ts';
export { jsKernels } from './js.ts';

export { BACKEND_NAMES } from './types.ts';

export interface KernelOptions {
  /** Threads for the backends that use several (wasm, native); default: every core. */
  threads?: number;
  /** Called once with a sentence when `auto` cannot use the fastest backend, saying why. */
  onFallback?: (message: string) => void;
  /** The native addon's file; default: build/Release/fmnist_native.node. */
  nativeAddonPath?: string;
}

const reason = (error: unknown) => (error instanceof Error ? error.message.split('\n')[0] : String(error));

/**
 * The kernels of a backend by name. `auto` picks the fastest CPU backend available: native
 * (C), then wasm, then js, telling onFallback once why it could not use a faster one; the GPU
 * (webgpu) only where asked for by name.
 */
export async function loadKernels(name: BackendName | 'auto' = 'auto', options: KernelOptions = {}): Promise<Kernels> {
  const addonPath = options.nativeAddonPath ?? DEFAULT_ADDON_PATH;
  switch (name) {
    case 'js':
      return jsKernels;
    case 'wasm':
      if (!wasmBuildPresent()) {
        throw new UsageError('The wasm backend is not built (dist/wasm/ is missing); run `npm run build`, or choose --backend js.');
      }
      return loadWasmKernels({ threads: options.threads });
    case 'webgpu': {
      // Loaded only where asked for: the webgpu package is optional, and Dawn is large.
      const { loadWebGpuKernels } = await import('./webgpu/node.ts');
      return loadWebGpuKernels();
    }
    case 'native':
      if (!nativeBuildPresent(addonPath)) {
        throw new UsageError('The native backend is not built; install a C compiler (Debian: build-essential) and run `npm install` again, or choose --backend wasm.');
      }
      try {
        return loadNativeKernels({ threads: options.threads, addonPath });
      } catch (error) {
        if (error instanceof UsageError) throw error;
        throw new UsageError(`The native backend failed to load (${reason(error)}); rebuild it with \`npm install\`, or choose --backend wasm.`);
      }
    case 'auto': {
      let why: string;
      if (!nativeBuildPresent(addonPath)) {
        why = 'the native backend is not built (it needs a C compiler at install time)';
      } else {
        try {
          return loadNativeKernels({ threads: options.threads, addonPath });
        } catch (error) {
          if (error instanceof UsageError) throw error;
          why = `the native backend failed to load (${reason(error)})`;
        }
      }
      if (!wasmBuildPresent()) {
        options.onFallback?.(`using the js backend: ${why}, and the wasm backend is not built (run \`npm run build\`)`);
        return jsKernels;
      }
      try {
        const kernels = await loadWasmKernels({ threads: options.threads });
        options.onFallback?.(`using the wasm backend: ${why}`);
        return kernels;
      } catch (error) {
        options.onFallback?.(`using the js backend: ${why}, and the wasm backend failed to start (${reason(error)})`);
        return jsKernels;
      }
    }
    default:
      throw new UsageError(`Unknown backend "${String(name)}"; choose one of: ${BACKEND_NAMES.join(', ')}, auto.`);
  }
}
