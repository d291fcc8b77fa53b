import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { KERNELS, parseArgs } from '../spec.ts';
import type { Kernels, NativeExports } from '../types.ts';

/** Where node-gyp puts the addon: build/Release/ at the package root (three folders up from src/kernels/native and dist/kernels/native). */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../build/Release/fmnist_native.node', import.meta.url));

/** The addon: the kernels of spec.ts (native/addon.c and generated/bindings.c), and its own controls. */
type NativeAddon = NativeExports & {
  setThreads(threads: number): void;
  describe(): { core: string; threads: number };
};

export interface NativeOptions {
  /** OpenBLAS threads; default: every core. */
  threads?: number;
  /** The addon file; default: build/Release/fmnist_native.node. */
  addonPath?: string;
}

/** Whether the addon was built (by `npm install` on a machine with libopenblas-dev). */
export function nativeBuildPresent(addonPath = DEFAULT_ADDON_PATH): boolean {
  return existsSync(addonPath);
}

/**
 * The OpenBLAS kernels that the native backend names where the user has not: its AVX2 ones
 * ("Haswell") on every x86-64 CPU with AVX2 and FMA, nothing elsewhere. Left to itself OpenBLAS
 * picks kernels by CPU (Debian's 0.3.21: "Cooperlake" on a Zen 4, "Haswell" on a Zen 3 and on a
 * Zen 5, which it does not know), and kernels of other widths and blockings round a product
 * differently, so the same seed trained other weights on one machine than on another. With one
 * kernel set everywhere a seed gives the same figures on every such machine; what it costs is
 * measured in docs/performance.md. Setting OPENBLAS_CORETYPE (to "SkylakeX", say) overrides it.
 */
export function openBlasCoreFor(cpuinfo: string, arch: string = process.arch): string | undefined {
  if (arch !== 'x64') return undefined;
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  return /\bavx2\b/.test(flags) && /\bfma\b/.test(flags) ? 'Haswell' : undefined;
}

/** Sets OPENBLAS_CORETYPE (see openBlasCoreFor) before the addon loads OpenBLAS, which reads it then. */
function chooseOpenBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE) return;
  let cpuinfo: string;
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return;
  }
  const core = openBlasCoreFor(cpuinfo);
  if (core) process.env.OPENBLAS_CORETYPE = core;
}

type Positional = (...args: unknown[]) => unknown;

/** A kernel taking its arguments by name, calling the addon's function positionally in declaration order. */
function byName(fn: Positional, args: string): (named: Record<string, unknown>) => unknown {
  const names = parseArgs(args).map((arg) => arg.name);
  return (named) => fn(...names.map((name) => named[name]));
}

/** The native backend: the addon over OpenBLAS. Throws when the addon cannot be loaded. */
export function loadNativeKernels(options: NativeOptions = {}): Kernels {
  const threads = options.threads ?? availableParallelism();
  chooseOpenBlasCore();
  const addon = createRequire(import.meta.url)(options.addonPath ?? DEFAULT_ADDON_PATH) as NativeAddon;
  const functions = addon as unknown as Record<string, Positional>;
  const direct = Object.entries(KERNELS).filter(([, spec]) => spec.native === 'direct');
  const missing = direct.map(([name]) => name).filter((name) => typeof functions[name] !== 'function');
  if (missing.length > 0) throw new Error(`the addon lacks ${missing.join(', ')}; rebuild it with npm install`);
  addon.setThreads(threads);
  const { core } = addon.describe();
  const kernels = Object.fromEntries(direct.map(([name, spec]) => [name, byName(functions[name].bind(addon), spec.args)])) as unknown as Omit<Kernels, 'name' | 'description' | 'allocate' | 'adamStep'>;
  return {
    name: 'native',
    description: `native (OpenBLAS ${core}, ${threads} thread${threads === 1 ? '' : 's'})`,
    allocate: (length) => new Float32Array(length),
    ...kernels,
    // The bias corrections in float64 here, as the other backends compute them.
    adamStep: ({ param, grad, m, v, n, learningRate, beta1, beta2, epsilon, weightDecay, step }) =>
      addon.adamUpdate(param, grad, m, v, n, learningRate / (1 - beta1 ** step), beta1, beta2, epsilon, weightDecay, 1 - beta2 ** step),
  };
}
