// Training-step time of several builds of this project in one process, taking turns, so that
// a before/after comparison is not at the mercy of a machine whose speed drifts from minute to
// minute. Each argument is the root of a checkout built with `npm ci` (or `npm run install &&
// npm run build`), for example `git worktree add ../before <commit>`:
//
//   node --import tsx bench/compare-builds.ts ../before .
//
// For every build, backend (native, wasm), thread count (1, 2) and model (the reference CNN at
// batch 64, the default CNN's architecture at its batch), one training step (forward, backward,
// Adam) on a fixed batch; every configuration takes three steps in turn, ROUNDS rounds (default
// 10). One JSON line per configuration: the median and the range of its rounds' milliseconds per
// step. BACKENDS=native (or wasm) times one backend only. KERNELS=1 also times every kernel call
// and adds each kernel's milliseconds per step (those of 0.1 ms or more) to the lines. Builds from before the addon's own
// matrix products (native/sgemm.c) multiplied with OpenBLAS: its AVX2 kernels are named before
// any build loads it (Haswell, as those builds did), so every such build multiplies with the same ones.
import { resolve } from 'node:path';
import type { Architecture } from '../src/models/sequential.ts';
import { fixedBatchStep, median, timedKernels } from './training-step.ts';

const roots = process.argv.slice(2).map((root) => resolve(root));
if (roots.length === 0) {
  console.error('usage: node --import tsx bench/compare-builds.ts <checkout> [<checkout> ...]');
  process.exit(2);
}
process.env.OPENBLAS_CORETYPE ??= 'Haswell';
const rounds = Number(process.env.ROUNDS ?? 10);
const backends = (process.env.BACKENDS ?? 'native,wasm').split(',');
const timeKernels = process.env.KERNELS === '1';
const round2 = (value: number) => Math.round(value * 100) / 100;

interface Configuration {
  build: string;
  backend: 'native' | 'wasm';
  threads: number;
  model: string;
  batch: number;
  /** Native kernels set their thread count process-wide, so each turn sets it again. */
  select: () => void;
  step: () => void;
  milliseconds: number[];
  /** With KERNELS=1: milliseconds in each kernel over the timed rounds. */
  spent: Map<string, number>;
}

const configurations: Configuration[] = [];
for (const root of roots) {
  // Each build's own modules: its kernels' bindings and layers go together.
  const from = (path: string) => import(`${root}/src/${path}`);
  const native = await from('kernels/native/node.ts');
  const wasm = await from('kernels/wasm/node.ts');
  const { SoftmaxCrossEntropy } = await from('layers/softmax-cross-entropy.ts');
  const { referenceCnnArchitecture } = await from('models/reference-cnn.ts');
  const { Sequential } = await from('models/sequential.ts');
  const { Rng } = await from('random/rng.ts');
  const { cnnArchitecture } = await from('models/cnn.ts');
  const { DEFAULT_CNN_CONFIG } = await from('runs/configs.ts');
  const { Adam } = await from('training/optimizers.ts');
  const addonPath = `${root}/build/Release/fmnist_native.node`;
  const models: [string, Architecture, number][] = [
    ['reference-cnn', referenceCnnArchitecture(), 64],
    ['default-cnn', cnnArchitecture({ ...DEFAULT_CNN_CONFIG }).architecture, DEFAULT_CNN_CONFIG.batchSize],
  ];
  for (const threads of [1, 2]) {
    const wasmKernels = await wasm.loadWasmKernels({ threads });
    for (const backend of (['native', 'wasm'] as const).filter((name) => backends.includes(name))) {
      const load = () => (backend === 'native' ? native.loadNativeKernels({ threads, addonPath }) : wasmKernels);
      for (const [model, architecture, batch] of models) {
        const spent = new Map<string, number>();
        const kernels = timeKernels ? timedKernels(load(), spent) : load();
        const step = fixedBatchStep({ Sequential, SoftmaxCrossEntropy, Adam, Rng }, kernels, architecture, batch);
        configurations.push({
          build: root,
          backend,
          threads,
          model,
          batch,
          milliseconds: [],
          select: () => void (backend === 'native' && load()),
          step,
          spent,
        });
      }
    }
  }
}

for (const configuration of configurations) {
  configuration.select();
  configuration.step();
  configuration.step();
  configuration.spent.clear();
}
for (let round = 0; round < rounds; round++) {
  for (const configuration of configurations) {
    configuration.select();
    const started = performance.now();
    for (let i = 0; i < 3; i++) configuration.step();
    configuration.milliseconds.push((performance.now() - started) / 3);
  }
}
for (const { build, backend, threads, model, batch, milliseconds, spent } of configurations) {
  const kernels = [...spent]
    .map(([name, ms]) => [name, round2(ms / (rounds * 3))] as const)
    .filter(([, ms]) => ms >= 0.1)
    .sort((a, b) => b[1] - a[1]);
  const kernelMsPerStep = timeKernels ? { kernelMsPerStep: Object.fromEntries(kernels) } : {};
  console.log(JSON.stringify({ bench: 'compare-builds', build, backend, threads, model, batch, msPerStep: round2(median(milliseconds)), msPerStepRange: [round2(Math.min(...milliseconds)), round2(Math.max(...milliseconds))], ...kernelMsPerStep }));
}
// The wasm backends' idle workers would keep the process alive.
process.exit(0);
