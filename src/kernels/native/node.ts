import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { AdamHyper, Kernels, SgdHyper } from '../types.ts';

/** Where node-gyp puts the addon: build/Release/ at the package root (three folders up from src/kernels/native and dist/kernels/native). */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../build/Release/fmnist_native.node', import.meta.url));

/** The functions native/fmnist_native.c exports. */
interface NativeAddon {
  gemm(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: number, transB: number, accumulate: number): void;
  gatherPixels(out: Float32Array, pixels: Uint8Array, indices: Int32Array, start: number, count: number, rowLength: number): void;
  addBias(out: Float32Array, bias: Float32Array, rows: number, cols: number): void;
  sumRows(dbias: Float32Array, dout: Float32Array, rows: number, cols: number): void;
  relu(out: Float32Array, inp: Float32Array, n: number): void;
  reluBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, n: number): void;
  zero(out: Float32Array, n: number): void;
  dropoutMask(mask: Float32Array, n: number, threshold: number, scale: number, key0: number, key1: number): void;
  multiply(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  softmaxCrossEntropy(probs: Float32Array, logits: Float32Array, labels: Uint8Array, rows: number, cols: number): number;
  softmaxCrossEntropyBackward(dlogits: Float32Array, probs: Float32Array, labels: Uint8Array, rows: number, cols: number): void;
  sgdStep(param: Float32Array, grad: Float32Array, velocity: Float32Array, n: number, lr: number, momentum: number, nesterov: number, decay: number): void;
  adamStep(
    param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number,
    stepSize: number, beta1: number, beta2: number, epsilon: number, decay: number, correction2: number,
  ): void;
  conv2d(out: Float32Array, inp: Float32Array, weight: Float32Array, ...geometry: number[]): void;
  conv2dBackwardInput(dinp: Float32Array, dout: Float32Array, weight: Float32Array, ...geometry: number[]): void;
  conv2dBackwardWeight(dweight: Float32Array, inp: Float32Array, dout: Float32Array, ...geometry: number[]): void;
  maxPool2x2(out: Float32Array, inp: Float32Array, batch: number, height: number, width: number, channels: number): void;
  maxPool2x2Backward(dinp: Float32Array, dout: Float32Array, inp: Float32Array, out: Float32Array, batch: number, height: number, width: number, channels: number): void;
  setThreads(threads: number): void;
  describe(): { core: string; threads: number };
}

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
 * Debian's OpenBLAS 0.3.21 does not recognise newer Intel CPUs with AVX-512 and falls back to
 * its AVX2 kernels; naming the core type selects its AVX-512 kernels (179 against 101 GFLOP/s on
 * one core, measured on such a machine). On AMD's Zen 4 it already picks an AVX-512 core
 * (Cooperlake), so nothing is set there. OpenBLAS reads the variable when the library loads,
 * so it is set before the addon is loaded, and never where the user has set it.
 */
function chooseOpenBlasCore(): void {
  if (process.env.OPENBLAS_CORETYPE) return;
  let cpuinfo: string;
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return;
  }
  const intel = /^vendor_id\s*:\s*GenuineIntel/m.test(cpuinfo);
  if (intel && /\bavx512f\b/.test(cpuinfo) && /\bavx512vl\b/.test(cpuinfo)) process.env.OPENBLAS_CORETYPE = 'SkylakeX';
}

/** The native backend: the addon over OpenBLAS. Throws when the addon cannot be loaded. */
export function loadNativeKernels(options: NativeOptions = {}): Kernels {
  const threads = options.threads ?? availableParallelism();
  chooseOpenBlasCore();
  const addon = createRequire(import.meta.url)(options.addonPath ?? DEFAULT_ADDON_PATH) as NativeAddon;
  addon.setThreads(threads);
  const { core } = addon.describe();
  return {
    name: 'native',
    description: `native (OpenBLAS ${core}, ${threads} thread${threads === 1 ? '' : 's'})`,
    allocate: (length) => new Float32Array(length),
    matmul: (c, a, b, m, k, n, accumulate) => addon.gemm(c, a, b, m, k, n, 0, 0, accumulate ? 1 : 0),
    matmulTransA: (c, a, b, m, k, n, accumulate) => addon.gemm(c, a, b, m, k, n, 1, 0, accumulate ? 1 : 0),
    matmulTransB: (c, a, b, m, k, n, accumulate) => addon.gemm(c, a, b, m, k, n, 0, 1, accumulate ? 1 : 0),
    addBias: (out, bias, rows, cols) => addon.addBias(out, bias, rows, cols),
    sumRows: (dbias, dout, rows, cols) => addon.sumRows(dbias, dout, rows, cols),
    relu: (out, inp, n) => addon.relu(out, inp, n),
    reluBackward: (dinp, dout, out, n) => addon.reluBackward(dinp, dout, out, n),
    gatherPixels: (out, pixels, indices, start, count, rowLength) => addon.gatherPixels(out, pixels, indices, start, count, rowLength),
    zero: (out, n) => addon.zero(out, n),
    dropoutMask: (mask, n, threshold, scale, key0, key1) => addon.dropoutMask(mask, n, threshold, scale, key0, key1),
    multiply: (out, a, b, n) => addon.multiply(out, a, b, n),
    softmaxCrossEntropy: (probs, logits, labels, rows, cols) => addon.softmaxCrossEntropy(probs, logits, labels, rows, cols),
    softmaxCrossEntropyBackward: (dlogits, probs, labels, rows, cols) => addon.softmaxCrossEntropyBackward(dlogits, probs, labels, rows, cols),
    conv2d: (out, inp, weight, s) => addon.conv2d(out, inp, weight, s.batch, s.height, s.width, s.inChannels, s.outChannels, s.kernelSize),
    conv2dBackwardInput: (dinp, dout, weight, s) =>
      addon.conv2dBackwardInput(dinp, dout, weight, s.batch, s.height, s.width, s.inChannels, s.outChannels, s.kernelSize),
    conv2dBackwardWeight: (dweight, inp, dout, s) =>
      addon.conv2dBackwardWeight(dweight, inp, dout, s.batch, s.height, s.width, s.inChannels, s.outChannels, s.kernelSize),
    maxPool2x2: (out, inp, batch, height, width, channels) => addon.maxPool2x2(out, inp, batch, height, width, channels),
    maxPool2x2Backward: (dinp, dout, inp, out, batch, height, width, channels) =>
      addon.maxPool2x2Backward(dinp, dout, inp, out, batch, height, width, channels),
    sgdStep: (param, grad, velocity, n, h: SgdHyper) =>
      addon.sgdStep(param, grad, velocity, n, h.learningRate, h.momentum, h.nesterov ? 1 : 0, h.weightDecay),
    adamStep: (param, grad, m, v, n, h: AdamHyper) =>
      addon.adamStep(param, grad, m, v, n, h.learningRate / (1 - h.beta1 ** h.step), h.beta1, h.beta2, h.epsilon, h.weightDecay, 1 - h.beta2 ** h.step),
  };
}
