// Benchmarks: one JSON object per line on stdout. Run: npm run bench [-- gemm|train|conv|peak ...];
// `npm run bench -- profile` (not part of the default set) splits a training step by kernel,
// `npm run bench -- layers` (neither) times each convolution of the reference CNN on 1 and 2
// threads in turn, `npm run bench -- step` (neither) times training steps of the reference and
// the default CNN, `npm run bench -- serve` (neither) loads the inference server (bench/serve.ts),
// `npm run bench -- coordination --storage URL` (neither; it needs a database) runs 64 search
// workers with jobs of no work against a search database (bench/coordination.ts),
// `npm run bench -- search [--storage URL] [--workers N] [--rounds N] [--train-limit N]` (neither) runs a small study
// and trains each trial with `fmnist train` beside it: the jobs' speed and the study's overhead (bench/search.ts).
// `npm run bench -- infer` (neither) compares our inference with ONNX Runtime's,
// `-- infer-layers` (neither) splits the CNN's inference by layer in both (bench/infer.ts),
// `npm run bench -- browser` (neither) trains in the web app in headless Chromium beside Node's
// wasm backend (bench/browser.ts), `npm run bench -- inside` (neither) what the web app's live
// view of the weights costs its training (bench/browser.ts), `npm run bench -- webgpu [--pipeline]` (neither) the WebGPU
// backend against native and PyTorch on CUDA (bench/webgpu.ts; scripts/gpu-bench.sh on a GPU machine).
// Timings are medians of repeated runs after warm-up; run on an otherwise idle machine.
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coordinationBench } from './coordination.ts';
import { searchBench } from './search.ts';
import { pixelExamples } from '../src/data/dataset.ts';
import { loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { stratifiedSample } from '../src/data/split.ts';
import { jsKernels, type Kernels, type Tensor } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { referenceCnnArchitecture } from '../src/models/reference-cnn.ts';
import { Sequential, type Architecture } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { DEFAULT_CNN_CONFIG } from '../src/runs/configs.ts';
import { fit } from '../src/training/fit.ts';
import { Adam } from '../src/training/optimizers.ts';
import { browserBench, insideBench } from './browser.ts';
import { benchInfer, benchInferLayers } from './infer.ts';
import { fixedBatchStep, median, timedKernels } from './training-step.ts';

const args = process.argv.slice(2);
/** A flag's value, taken out of the arguments: --storage URL and --workers N of the coordination benchmark. */
const flagValue = (flag: string): string | undefined => {
  const at = args.indexOf(flag);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const storage = flagValue('--storage');
const workersFlag = flagValue('--workers');
const rounds = Number(flagValue('--rounds') ?? 3);
const trainLimit = flagValue('--train-limit');
const selected = new Set(args);
/** The default set: gemm, conv, train and peak; profile, layers, step and browser only when named. */
const wants = (name: string) => (selected.size === 0 && name !== 'layers' && name !== 'browser') || selected.has(name);
const emit = (record: object) => console.log(JSON.stringify(record));
if (selected.has('serve')) await (await import('./serve.ts')).serveBench(emit);
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

if (selected.has('coordination')) {
  if (!storage) {
    console.error('bench: coordination needs --storage postgresql://USER@HOST/DB (scripts/test-postgres.sh start DIR makes a throwaway one)');
    process.exit(2);
  }
  for (const record of await coordinationBench(storage, { workers: Number(workersFlag ?? 64) })) emit(record);
}
if (selected.has('search')) await searchBench(emit, { storage, workers: Number(workersFlag ?? 1), rounds, trainLimit: trainLimit === undefined ? null : Number(trainLimit) });

/** Median seconds of `run`, repeated until about `budget` seconds have passed (at least 5 times). */
function time(run: () => void, budget = 1): number {
  for (let i = 0; i < 3; i++) run();
  const samples: number[] = [];
  const started = performance.now();
  while (samples.length < 5 || (performance.now() - started) / 1000 < budget) {
    const t0 = performance.now();
    run();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const cores = availableParallelism();
const threadCounts = [...new Set([1, Math.min(2, cores), cores])];
const wasmByThreads = new Map<number, Kernels>();
// The benchmarks of whole commands load their own kernels, in their own processes.
const noKernels = selected.size > 0 && [...selected].every((name) => ['serve', 'coordination', 'search'].includes(name));
if (!noKernels) for (const threads of threadCounts) wasmByThreads.set(threads, await loadWasmKernels({ threads }));
/**
 * Every backend at every thread count. The native backend's thread count is its team's, which
 * is process-wide, so it is loaded (and its threads set) as each configuration is reached.
 */
function* configurations(): Generator<{ kernels: Kernels; threads: number }> {
  yield { kernels: jsKernels, threads: 1 };
  for (const threads of threadCounts) yield { kernels: wasmByThreads.get(threads)!, threads };
  if (!nativeBuildPresent()) return;
  for (const threads of threadCounts) yield { kernels: loadNativeKernels({ threads }), threads };
}

function random(kernels: Kernels, n: number, rng: Rng): Tensor {
  const array = kernels.allocate(n);
  kernels.write(array, Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1));
  return array;
}

if (wants('gemm')) {
  // [m, k, n, layout]: two square products, the MLP's forward product and its two gradient products, and the
  // reference CNN's third convolution as im2col (64 images of 14x14, 3x3x32 taps, 64 filters).
  const shapes: [number, number, number, 'nn' | 'tn' | 'nt', string][] = [
    [256, 256, 256, 'nn', 'square'],
    [512, 512, 512, 'nn', 'square'],
    [64, 784, 128, 'nn', 'mlp forward x·W'],
    [784, 64, 128, 'tn', 'mlp weight gradient xᵀ·dy'],
    [64, 128, 784, 'nt', 'mlp input gradient dy·Wᵀ'],
    [12544, 288, 64, 'nn', 'conv 14x14x32->64 as im2col'],
  ];
  const rng = Rng.fromSeed(1);
  for (const { kernels, threads } of configurations()) {
    for (const [m, k, n, layout, what] of shapes) {
      if (kernels.name === 'js' && m * k * n > 50e6) continue;
      const a = random(kernels, m * k, rng);
      const b = random(kernels, k * n, rng);
      const c = kernels.allocate(m * n);
      const product = layout === 'nn' ? kernels.matmul : layout === 'tn' ? kernels.matmulTransA : kernels.matmulTransB;
      const seconds = time(() => product({ c, a, b, m, k, n, accumulate: false }));
      emit({ bench: 'gemm', shape: `${m}x${k}x${n}`, layout, what, threads, backend: kernels.name, gflops: round((2 * m * k * n) / seconds / 1e9) });
    }
  }
}

if (wants('conv')) {
  const rng = Rng.fromSeed(2);
  const layers = [
    { batch: 64, height: 28, width: 28, inChannels: 32, outChannels: 32, kernelSize: 3 },
    { batch: 64, height: 14, width: 14, inChannels: 32, outChannels: 64, kernelSize: 3 },
  ];
  for (const { kernels, threads } of configurations()) {
    if (kernels.name === 'js') continue;
    for (const shape of layers) {
      const { batch, height, width, inChannels: C, outChannels: O, kernelSize: K } = shape;
      const inp = random(kernels, batch * height * width * C, rng);
      const weight = random(kernels, K * K * C * O, rng);
      const out = kernels.allocate(batch * height * width * O);
      const dinp = kernels.allocate(batch * height * width * C);
      const dweight = kernels.allocate(K * K * C * O);
      const forward = time(() => kernels.conv2d({ out, inp, weight, ...shape }));
      const backwardInput = time(() => kernels.conv2dBackwardInput({ dinp, dout: out, weight, ...shape }));
      const backwardWeight = time(() => kernels.conv2dBackwardWeight({ dweight, inp, dout: out, ...shape }));
      const flop = 2 * batch * height * width * K * K * C * O;
      emit({
        bench: 'conv',
        layer: `${height}x${width}x${C}->${O}`,
        batch,
        threads,
        backend: kernels.name,
        forwardMs: round(forward * 1000, 2),
        backwardInputMs: round(backwardInput * 1000, 2),
        backwardWeightMs: round(backwardWeight * 1000, 2),
        forwardGflops: round(flop / forward / 1e9),
        backwardGflops: round((2 * flop) / (backwardInput + backwardWeight) / 1e9),
      });
    }
  }
}

if (wants('train')) {
  const location = await locateData({ download: false });
  const training = loadTrainingSet(location.dir).data;
  /**
   * Images per second of one epoch of `fit` over `count` real training images, batch 64, Adam,
   * from a fresh model; timed from the fourth batch to the last (the first three warm up),
   * validation excluded.
   */
  const epochSpeed = async (kernels: Kernels, architecture: Architecture, count: number): Promise<number> => {
    const rng = Rng.fromSeed(3);
    const model = new Sequential(kernels, architecture);
    model.initialize(rng.fork());
    const images = pixelExamples(stratifiedSample(training, count, rng.fork()));
    let started = 0;
    let speed = 0;
    await fit({
      kernels,
      model,
      loss: new SoftmaxCrossEntropy(kernels, 10),
      optimizer: new Adam(kernels, model.parameterCount),
      train: images,
      validation: pixelExamples(stratifiedSample(training, 10, rng.fork())),
      epochs: 1,
      batchSize: 64,
      learningRate: 0.001,
      schedule: { name: 'constant' },
      patience: 0,
      shuffleRng: rng.fork(),
      dropoutRng: rng.fork(),
      onProgress: (event) => {
        if (event.type !== 'batch') return;
        if (event.batch === 3) started = performance.now();
        if (event.batch === event.batches) speed = ((event.batches - 3) * 64) / ((performance.now() - started) / 1000);
      },
    });
    return speed;
  };
  // This machine's speed drifts within seconds, so the configurations take turns: three rounds of
  // one epoch each (js: one epoch of 6,400 images, once), and the figure is the median epoch.
  // Thread speed-ups compare the epochs of one round, which ran minutes apart at most.
  const models: [string, Architecture, number][] = [
    ['mlp', mlpArchitecture({ hidden: 128, dropout: 0.2, init: 'he' }), 48000],
    ['reference-cnn', referenceCnnArchitecture(), 64 * 43],
    // The reference CNN with batch normalisation after each convolution and the feature layer:
    // what the normalisation kernels cost per epoch, beside the plain one.
    ['reference-cnn-batchnorm', referenceCnnArchitecture({ batchNorm: true }), 64 * 43],
  ];
  const speeds = new Map<string, { model: string; backend: string; threads: number; epochs: number[] }>();
  // PyTorch (Debian's python3-torch, run by the system Python) trains the same reference CNN in
  // each round, so the ratios compare speeds measured minutes apart at most.
  const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (!torch) emit({ bench: 'train', note: 'PyTorch is not installed (Debian: apt-get install python3-torch): no reference speeds' });
  const pytorchSpeed = (threads: number): number => {
    const script = fileURLToPath(new URL('pytorch_reference.py', import.meta.url));
    const run = spawnSync('/usr/bin/python3', [script, '--threads', String(threads), '--batches', '43'], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`the PyTorch reference failed: ${run.stderr}`);
    return (JSON.parse(run.stdout) as { imagesPerSecond: number }).imagesPerSecond;
  };
  for (let round = 0; round < 3; round++) {
    if (torch) {
      for (const threads of threadCounts) {
        const key = `reference-cnn pytorch ${threads}`;
        if (!speeds.has(key)) speeds.set(key, { model: 'reference-cnn', backend: 'pytorch', threads, epochs: [] });
        speeds.get(key)!.epochs.push(pytorchSpeed(threads));
      }
    }
    for (const { kernels, threads } of configurations()) {
      if (kernels.name === 'js' && round > 0) continue;
      for (const [model, architecture, count] of models) {
        if (kernels.name === 'js' && model !== 'mlp') continue;
        const key = `${model} ${kernels.name} ${threads}`;
        if (!speeds.has(key)) speeds.set(key, { model, backend: kernels.name, threads, epochs: [] });
        speeds.get(key)!.epochs.push(await epochSpeed(kernels, architecture, kernels.name === 'js' ? 6400 : count));
      }
    }
  }
  for (const { model, backend, threads, epochs } of speeds.values()) {
    const digits = model === 'mlp' ? 2 : 1;
    emit({
      bench: 'train',
      model,
      threads,
      backend,
      imagesPerSecond: Math.round(median(epochs)),
      epochSeconds: round(48000 / median(epochs), digits),
      epochSecondsEach: epochs.map((speed) => round(48000 / speed, digits)),
    });
  }
  for (const { model, backend, threads, epochs } of speeds.values()) {
    const single = speeds.get(`${model} ${backend} 1`);
    if (threads === 1 || !single) continue;
    const each = epochs.map((speed, i) => round(speed / single.epochs[i], 2));
    emit({ bench: 'scaling', model, backend, threads, speedup: median(each), speedupEach: each });
  }
  // Each backend against PyTorch at the same thread count, round by round.
  for (const { model, backend, threads, epochs } of speeds.values()) {
    const reference = speeds.get(`${model} pytorch ${threads}`);
    if (backend === 'pytorch' || !reference) continue;
    const each = epochs.map((speed, i) => round(speed / reference.epochs[i], 2));
    emit({ bench: 'vs-pytorch', model, backend, threads, ratio: median(each), ratioEach: each });
  }
}

if (wants('peak')) {
  // The hardware's limit: fused multiply-adds per second on 1 and 2 threads (bench/peak.c, built
  // here with the machine's C compiler for its widest vectors).
  const binary = join(tmpdir(), `fmnist-peak-${process.pid}`);
  const build = spawnSync('cc', ['-O3', '-march=native', '-pthread', fileURLToPath(new URL('peak.c', import.meta.url)), '-o', binary], { encoding: 'utf8' });
  if (build.status !== 0) {
    emit({ bench: 'peak', note: `no C compiler with FMA here: ${build.stderr.trim().split('\n')[0] ?? ''}` });
  } else {
    for (const threads of threadCounts) {
      const runs = [0, 1, 2].map(() => (JSON.parse(spawnSync(binary, [String(threads)], { encoding: 'utf8' }).stdout) as { gflops: number; lanes: number }));
      emit({ bench: 'peak', threads, lanes: runs[0].lanes, gflops: median(runs.map((r) => r.gflops)) });
    }
  }
}

if (wants('layers') && cores >= 2) {
  // The five convolutions of the reference CNN (forward and both gradients), 1 and 2 threads
  // taking turns for four rounds: which layers gain from the second thread. Native kernels are
  // reloaded at each turn, since their thread count is process-wide.
  const shapes = [[28, 1, 32], [28, 32, 32], [14, 32, 64], [14, 64, 64], [7, 64, 128]].map(([size, inChannels, outChannels]) => ({
    batch: 64, height: size, width: size, inChannels, outChannels, kernelSize: 3,
  }));
  const backends: [string, (threads: number) => Kernels][] = [['wasm', (threads) => wasmByThreads.get(threads)!]];
  if (nativeBuildPresent()) backends.push(['native', (threads) => loadNativeKernels({ threads })]);
  const fill = (k: Kernels, n: number) => {
    const tensor = k.allocate(n);
    k.write(tensor, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)));
    return tensor;
  };
  for (const [backend, load] of backends) {
    for (const shape of shapes) {
      const { batch, height, width, inChannels: C, outChannels: O } = shape;
      const buffers = [1, 2].map((threads) => {
        const k = load(threads);
        return {
          inp: fill(k, batch * height * width * C), weight: fill(k, 9 * C * O), out: fill(k, batch * height * width * O),
          dinp: k.allocate(batch * height * width * C), dweight: k.allocate(9 * C * O),
        };
      });
      const milliseconds: number[][] = [[], []];
      for (let turn = 0; turn < 8; turn++) {
        const index = turn % 2;
        const k = load(index + 1);
        const b = buffers[index];
        milliseconds[index].push(1000 * time(() => {
          k.conv2d({ out: b.out, inp: b.inp, weight: b.weight, ...shape });
          k.conv2dBackwardInput({ dinp: b.dinp, dout: b.out, weight: b.weight, ...shape });
          k.conv2dBackwardWeight({ dweight: b.dweight, inp: b.inp, dout: b.out, ...shape });
        }, 0.3));
      }
      const [one, two] = milliseconds.map((values) => [...values].sort((x, y) => x - y)[values.length >> 1]);
      emit({
        bench: 'layers', layer: `${height}x${width}x${C}->${O}`, batch, backend,
        ms1: round(one, 2), ms2: round(two, 2), speedup: round(one / two, 2),
        speedupEach: milliseconds[0].map((value, i) => round(value / milliseconds[1][i], 2)),
      });
    }
  }
}

if (selected.has('profile')) {
  // Where a training step spends its time: each kernel call timed on the calling thread
  // ("gatherPixels" assembles the batch from the training images); "javascript" is the rest of
  // the step (the layers' and the loop's own code).
  const location = await locateData({ download: false });
  const training = pixelExamples(stratifiedSample(loadTrainingSet(location.dir).data, 6400, Rng.fromSeed(5)));
  // [name, architecture, steps timed, batch]
  const models: [string, Architecture, number, number][] = [
    ['mlp', mlpArchitecture({ hidden: 128, dropout: 0.2, init: 'he' }), 400, 64],
    ['reference-cnn', referenceCnnArchitecture(), 40, 64],
    ['default-cnn', cnnArchitecture(DEFAULT_CNN_CONFIG).architecture, 20, DEFAULT_CNN_CONFIG.batchSize],
  ];
  for (const { kernels, threads } of configurations()) {
    if (kernels.name === 'js') continue;
    for (const [modelName, architecture, steps, batch] of models) {
      const spent = new Map<string, number>();
      const timed = timedKernels(kernels, spent);
      const rng = Rng.fromSeed(4);
      const model = new Sequential(timed, architecture);
      model.initialize(rng.fork());
      const loss = new SoftmaxCrossEntropy(timed, 10);
      const optimizer = new Adam(timed, model.parameterCount);
      const input = timed.allocate(batch * 784);
      const losses = timed.allocate(batch);
      const labels = new Int32Array(batch);
      const order = Int32Array.from({ length: training.count }, (_, i) => i);
      rng.fork().shuffle(order);
      const context = { training: true, rng: rng.fork() };
      let next = 0;
      const step = () => {
        training.gather(input, order, next, batch, timed);
        for (let i = 0; i < batch; i++) labels[i] = training.labels[order[next + i]];
        next = (next + batch) % (training.count - batch);
        const logits = model.forward(input, batch, context);
        loss.forward(logits, labels, batch, losses);
        model.zeroGrad();
        loss.backward(model.outputGradient, labels, batch);
        model.backward(batch);
        optimizer.step(model.parameters, 0.001);
      };
      for (let i = 0; i < 5; i++) step();
      spent.clear();
      const started = performance.now();
      for (let i = 0; i < steps; i++) step();
      const total = performance.now() - started;
      const inKernels = [...spent.values()].reduce((a, b) => a + b, 0);
      for (const [kernel, ms] of [...spent, ['javascript', total - inKernels] as const].sort((a, b) => b[1] - a[1])) {
        emit({ bench: 'profile', model: modelName, batch, threads, backend: kernels.name, kernel, msPerStep: round(ms / steps, 3) });
      }
    }
  }
}

if (selected.has('step')) {
  // Milliseconds per training step (forward, backward, Adam) of the reference CNN (batch 64) and
  // of the default CNN's architecture (batch normalisation, batch 128) on a fixed batch: what the
  // kernels alone cost, without data loading, augmentation or validation. The thread counts take
  // turns, five steps at a time, twelve rounds; the figure is the median round.
  const cnn = DEFAULT_CNN_CONFIG;
  const models: [string, Architecture, number][] = [
    ['reference-cnn', referenceCnnArchitecture(), 64],
    ['default-cnn', cnnArchitecture({ ...cnn, batchNorm: cnn.batchNorm }).architecture, cnn.batchSize],
  ];
  const backends: [string, (threads: number) => Kernels][] = [['wasm', (threads) => wasmByThreads.get(threads)!]];
  if (nativeBuildPresent()) backends.push(['native', (threads) => loadNativeKernels({ threads })]);
  for (const [backend, load] of backends) {
    for (const [modelName, architecture, batch] of models) {
      const runs = threadCounts.map((threads) => ({
        threads,
        milliseconds: [] as number[],
        step: fixedBatchStep({ Sequential, SoftmaxCrossEntropy, Adam, Rng }, load(threads), architecture, batch),
      }));
      for (let round = 0; round < 13; round++) {
        for (const run of runs) {
          // Native kernels are reloaded at each turn: their thread count is process-wide.
          if (backend === 'native') load(run.threads);
          const started = performance.now();
          for (let i = 0; i < 5; i++) run.step();
          if (round > 0) run.milliseconds.push((performance.now() - started) / 5);
        }
      }
      for (const { threads, milliseconds } of runs) {
        emit({ bench: 'step', model: modelName, batch, backend, threads, msPerStep: round(median(milliseconds), 2), msPerStepRange: [round(Math.min(...milliseconds), 2), round(Math.max(...milliseconds), 2)] });
      }
    }
  }
}

if (selected.has('webgpu')) await (await import('./webgpu.ts')).benchWebGpu(emit, { pipeline: args.includes('--pipeline') });
if (selected.has('infer')) await benchInfer(wasmByThreads, emit);
if (selected.has('infer-layers')) await benchInferLayers(emit);
if (wants('browser')) await browserBench(emit);
if (selected.has('inside')) await insideBench(emit, { quick: selected.has('--quick') });

for (const kernels of wasmByThreads.values()) (kernels as { close?: () => void }).close?.();
