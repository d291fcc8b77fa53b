import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../errors.ts';
import { hostBackend, referenceKernels } from '../js.ts';
import { KERNELS, parseArgs } from '../spec.ts';
import type { HostKernels, Kernels, NativeExports } from '../types.ts';

/** Where node-gyp puts the addon: build/Release/ at the package root (three folders up from src/kernels/native and dist/kernels/native). */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../build/Release/fmnist_native.node', import.meta.url));

/** The addon: the kernels of spec.ts (native/addon.c and generated/bindings.c), and its own controls. */
type NativeAddon = NativeExports & {
  setThreads(threads: number): void;
  setGemmWidth(width: number): boolean;
  describe(): { widths: GemmWidth[]; width: GemmWidth; threads: number };
};

export interface NativeOptions {
  /** Threads of the addon's team; default: every core. */
  threads?: number;
  /**
   * The matrix products' vector width (the same results at every width); default:
   * FMNIST_GEMM_WIDTH, else the widest this CPU has. Like the threads, one setting per process.
   */
  gemmWidth?: GemmWidth;
  /** The addon file; default: build/Release/fmnist_native.node. */
  addonPath?: string;
}

/** Whether the addon was built (by `npm install` on a machine with a C compiler). */
export function nativeBuildPresent(addonPath = DEFAULT_ADDON_PATH): boolean {
  return existsSync(addonPath);
}

/** The vector widths of the native matrix products: AVX-512, AVX2 with FMA, scalar. */
export type GemmWidth = 16 | 8 | 1;

/**
 * The width asked for by FMNIST_GEMM_WIDTH, if any. Every width computes the same bits (each
 * element of a product is one chain of fused multiply-adds in the order of its sum, however
 * many elements a vector holds: native/sgemm.c), only more slowly; tests and benchmarks compare them.
 */
function widthFromEnvironment(): GemmWidth | undefined {
  const value = process.env.FMNIST_GEMM_WIDTH;
  if (value === undefined || value === '') return undefined;
  if (value === '16' || value === '8' || value === '1') return Number(value) as GemmWidth;
  throw new UsageError(`FMNIST_GEMM_WIDTH must be 16, 8 or 1 (floats per vector), not "${value}"; unset it to use the widest this CPU has.`);
}

const WIDTH_NAMES: Record<GemmWidth, string> = { 16: 'AVX-512', 8: 'AVX2', 1: 'scalar' };

const loadAddon = (addonPath = DEFAULT_ADDON_PATH) => createRequire(import.meta.url)(addonPath) as NativeAddon;

/** The widths that this CPU can run the native products at, widest first (the addon must be built). */
export function nativeGemmWidths(addonPath?: string): GemmWidth[] {
  return loadAddon(addonPath).describe().widths;
}

type Positional = (...args: unknown[]) => unknown;

/** A kernel taking its arguments by name, calling the addon's function positionally in declaration order. */
function byName(fn: Positional, args: string): (named: Record<string, unknown>) => unknown {
  const names = parseArgs(args).map((arg) => arg.name);
  return (named) => fn(...names.map((name) => named[name]));
}

/** The native backend: the addon. Throws when the addon cannot be loaded, or cannot run the width asked for. */
export function loadNativeKernels(options: NativeOptions = {}): Kernels {
  const threads = options.threads ?? availableParallelism();
  const width = options.gemmWidth ?? widthFromEnvironment() ?? 0;
  const addon = loadAddon(options.addonPath);
  const functions = addon as unknown as Record<string, Positional>;
  const direct = Object.entries(KERNELS).filter(([, spec]) => spec.native === 'direct');
  const missing = direct.map(([name]) => name).filter((name) => typeof functions[name] !== 'function');
  if (missing.length > 0) throw new Error(`the addon lacks ${missing.join(', ')}; rebuild it with npm install`);
  addon.setThreads(threads);
  if (!addon.setGemmWidth(width)) {
    throw new UsageError(`this CPU cannot run the native matrix products ${width} floats wide; it can run ${addon.describe().widths.join(', ')}.`);
  }
  const described = addon.describe();
  const reference = Object.keys(KERNELS).filter((name) => KERNELS[name as keyof typeof KERNELS].native === 'reference');
  const kernels = Object.fromEntries([
    ...direct.map(([name, spec]) => [name, byName(functions[name].bind(addon), spec.args)]),
    ...reference.map((name) => [name, referenceKernels[name as keyof typeof KERNELS]]),
  ]) as unknown as Omit<HostKernels, 'name' | 'description' | 'device' | 'allocate' | 'release' | 'write' | 'read' | 'adamStep'>;
  return hostBackend({
    name: 'native',
    description: `native (${WIDTH_NAMES[described.width]}, ${threads} thread${threads === 1 ? '' : 's'})`,
    device: 'cpu',
    allocate: referenceKernels.allocate,
    release: referenceKernels.release,
    write: referenceKernels.write,
    read: referenceKernels.read,
    ...kernels,
    // The bias corrections in float64 here, as the other backends compute them.
    adamStep: ({ param, grad, m, v, n, learningRate, beta1, beta2, epsilon, weightDecay, step }) =>
      addon.adamUpdate(param, grad, m, v, n, learningRate / (1 - beta1 ** step), beta1, beta2, epsilon, weightDecay, 1 - beta2 ** step),
  });
}
