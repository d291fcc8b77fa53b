import { UsageError } from '../errors.ts';
import { jsKernels } from './js.ts';
import type { BackendName, Kernels } from './types.ts';
import { loadWasmKernels, wasmBuildPresent } from './wasm/node.ts';

export type { AdamHyper, BackendName, ConvShape, Kernels, SgdHyper } from './types.ts';
export { jsKernels } from './js.ts';

export const BACKEND_NAMES: readonly BackendName[] = ['js', 'wasm'];

export interface KernelOptions {
  /** Threads for backends that use several (wasm); default: every core. */
  threads?: number;
  /** Called once with a sentence when `auto` cannot use the fastest backend. */
  onFallback?: (message: string) => void;
}

/**
 * The kernels of a backend by name. `auto` picks the fastest one available: wasm, unless its
 * compiled module is missing or the engine cannot run it, then js (saying why through onFallback).
 */
export async function loadKernels(name: BackendName | 'auto' = 'auto', options: KernelOptions = {}): Promise<Kernels> {
  switch (name) {
    case 'js':
      return jsKernels;
    case 'wasm':
      if (!wasmBuildPresent()) {
        throw new UsageError('The wasm backend is not built (build/wasm/ is missing); run `npm run build`, or choose --backend js.');
      }
      return loadWasmKernels({ threads: options.threads });
    case 'auto':
      if (!wasmBuildPresent()) {
        options.onFallback?.('using the js backend: the wasm backend is not built (run `npm run build`)');
        return jsKernels;
      }
      try {
        return await loadWasmKernels({ threads: options.threads });
      } catch (error) {
        options.onFallback?.(`using the js backend: the wasm backend failed to start (${error instanceof Error ? error.message : String(error)})`);
        return jsKernels;
      }
    default:
      throw new UsageError(`Unknown backend "${String(name)}"; choose one of: ${BACKEND_NAMES.join(', ')}, auto.`);
  }
}
