// `npm run bench -- infer`: inference throughput of our engine (native, wasm) and of ONNX Runtime
// on the same exported models, in one process, taking turns. See docs/export.md#benchmark.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTestSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { exportOnnx } from '../src/export/onnx.ts';
import { onnxClassifier } from '../src/export/onnx-runtime.ts';
import { ourClassifier, type ImageClassifier } from '../src/inference/classifier.ts';
import type { Kernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { shapeSize } from '../src/layers/index.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { saveModel } from '../src/models/model-file.ts';
import { Sequential } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { DEFAULT_CNN_CONFIG } from '../src/runs/configs.ts';
import { trainCnn, trainMlp } from '../src/runs/train.ts';

const BATCHES = [1, 64, 1024] as const;
const THREADS = [1, 2] as const;
const ROUNDS = 3;
/** Seconds of calls per turn, after one warm-up call. */
const TURN_SECONDS = 0.5;

interface Contender {
  runtime: 'ours-native' | 'ours-wasm' | 'onnxruntime';
  threads: number;
  classifier: ImageClassifier;
  /** Called before each turn: the native backend's thread count is process-wide. */
  prepare?: () => void;
}

/** Images per second of `classify` on `batch` images: one warm-up call, then calls for about TURN_SECONDS (at least two). */
async function turn(classifier: ImageClassifier, pixels: Uint8Array, batch: number): Promise<number> {
  await classifier.classify(pixels, batch);
  let calls = 0;
  const started = performance.now();
  while (calls < 2 || performance.now() - started < TURN_SECONDS * 1000) {
    await classifier.classify(pixels, batch);
    calls++;
  }
  return (calls * batch) / ((performance.now() - started) / 1000);
}

/**
 * Trains a quick MLP and CNN of the default architectures (1,000 training images, 1 epoch: the
 * weights do not change the work), exports them, and for each model, batch and thread count
 * times every runtime in turn, ROUNDS rounds; prints the median of each as a JSON line.
 */
export async function benchInfer(wasmByThreads: Map<number, Kernels>, emit: (record: object) => void): Promise<void> {
  const dir = join(tmpdir(), `fmnist-bench-infer-${process.pid}`);
  const location = await locateData({ download: false });
  const quick = { trainLimit: 1000, epochs: 1, validationFraction: 0.01, seed: 1, threads: 2 };
  process.stderr.write('infer: training a quick MLP and CNN (default architectures, 1,000 images, 1 epoch)\n');
  await trainMlp(quick, { outDir: join(dir, 'mlp'), data: { dataDir: location.dir } });
  await trainCnn(quick, { outDir: join(dir, 'cnn'), data: { dataDir: location.dir } });
  const pixels = loadTestSet(location.dir).data.pixels.subarray(0, Math.max(...BATCHES) * 784);
  try {
    for (const model of ['mlp', 'cnn'] as const) {
      const modelDir = join(dir, model);
      const exported = exportOnnx(modelDir);
      const contenders: Contender[] = [];
      for (const threads of THREADS) {
        if (nativeBuildPresent()) {
          const native = loadNativeKernels({ threads });
          contenders.push({ runtime: 'ours-native', threads, classifier: await ourClassifier(modelDir, native, model), prepare: () => loadNativeKernels({ threads }) });
        }
        const wasm = wasmByThreads.get(threads);
        if (wasm) contenders.push({ runtime: 'ours-wasm', threads, classifier: await ourClassifier(modelDir, wasm, model) });
        contenders.push({ runtime: 'onnxruntime', threads, classifier: await onnxClassifier(exported, model, { threads }) });
      }
      for (const batch of BATCHES) {
        for (const threads of THREADS) {
          const taking = contenders.filter((c) => c.threads === threads);
          const speeds = taking.map(() => [] as number[]);
          for (let round = 0; round < ROUNDS; round++) {
            for (const [index, contender] of taking.entries()) {
              contender.prepare?.();
              speeds[index].push(await turn(contender.classifier, pixels, batch));
            }
          }
          for (const [index, contender] of taking.entries()) {
            const each = speeds[index].map((s) => Math.round(s));
            const median = [...each].sort((a, b) => a - b)[Math.floor(each.length / 2)];
            emit({ bench: 'infer', model, runtime: contender.runtime, batch, threads, imagesPerSecond: median, imagesPerSecondEach: each });
          }
        }
      }
      for (const contender of contenders) await (contender.classifier as { close?: () => Promise<void> }).close?.();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Our model's layers one by one on its own buffers: microseconds per image of each layer's forward pass, median of `rounds`. */
function ourLayerTimes(model: Sequential, kernels: Kernels, pixels: Uint8Array, batch: number, rounds: number): number[] {
  const context = { training: false, rng: Rng.fromSeed(0) };
  const buffers = [kernels.allocate(batch * 784), ...model.layers.map((layer) => kernels.allocate(batch * shapeSize(layer.outputShape)))];
  kernels.write(buffers[0], Float32Array.from(pixels.subarray(0, batch * 784), (p) => p / 255));
  const samples = model.layers.map(() => [] as number[]);
  for (let round = 0; round <= rounds; round++) {
    for (const [i, layer] of model.layers.entries()) {
      const started = performance.now();
      layer.forward(buffers[i + 1], buffers[i], batch, context);
      // Round 0 warms up (first use of the buffers).
      if (round > 0) samples[i].push(((performance.now() - started) * 1000) / batch);
    }
  }
  return samples.map((each) => [...each].sort((a, b) => a - b)[Math.floor(each.length / 2)]);
}

/** ONNX Runtime's own profile of `runs` session runs: microseconds per image of each node (after its graph optimisations). */
async function onnxNodeTimes(model: Uint8Array, pixels: Uint8Array, batch: number, runs: number): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-ort-profile-'));
  try {
    const options = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: join(dir, 'profile') } as const;
    const session = await InferenceSession.create(model, options);
    const images = new Tensor('float32', Float32Array.from(pixels.subarray(0, batch * 784), (v) => v / 255), [batch, 1, 28, 28]);
    await session.run({ images });
    for (let i = 0; i < runs; i++) await session.run({ images });
    session.endProfiling();
    await session.release();
    const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as { cat: string; name: string; dur: number; args: { op_name?: string } }[];
    const times = new Map<string, number>();
    for (const event of events) {
      if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time')) continue;
      const node = `${event.name.replace(/_kernel_time$/, '')} (${event.args.op_name})`;
      times.set(node, (times.get(node) ?? 0) + event.dur / (runs + 1) / batch);
    }
    return times;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- infer-layers`: where the CNN's inference time goes, on one thread. Our native
 * engine layer by layer at batch 1, 128 (what evaluate() and so classify() run) and 1,024, then
 * ONNX Runtime node by node (its profiler) at 1 and 1,024, for a CNN of the default architecture
 * (He-initialised: the weights do not change the work).
 */
export async function benchInferLayers(emit: (record: object) => void): Promise<void> {
  if (!nativeBuildPresent()) return;
  const location = await locateData({ download: false });
  const pixels = loadTestSet(location.dir).data.pixels;
  const kernels = loadNativeKernels({ threads: 1 });
  const { architecture } = cnnArchitecture(DEFAULT_CNN_CONFIG);
  const model = new Sequential(kernels, architecture);
  model.initialize(Rng.fromSeed(1));
  const dir = join(tmpdir(), `fmnist-bench-infer-layers-${process.pid}`);
  try {
    await saveModel(dir, model, { kind: 'cnn', input: { type: 'pixels', scale: 1 / 255 }, classNames: [] });
    for (const batch of [1, 128, 1024]) {
      const times = ourLayerTimes(model, kernels, pixels, batch, batch === 1 ? 101 : batch === 128 ? 9 : 3);
      for (const [i, layer] of model.layers.entries()) {
        emit({ bench: 'infer-layers', runtime: 'ours-native', threads: 1, batch, layer: `${i} ${layer.spec.type} ${layer.inputShape.join('x')}`, usPerImage: Number(times[i].toFixed(1)) });
      }
      const total = times.reduce((a, b) => a + b, 0);
      emit({ bench: 'infer-layers', runtime: 'ours-native', threads: 1, batch, layer: 'total', usPerImage: Number(total.toFixed(1)), imagesPerSecond: Math.round(1e6 / total) });
    }
    for (const batch of [1, 1024]) {
      const nodes = await onnxNodeTimes(exportOnnx(dir).bytes, pixels, batch, batch === 1 ? 100 : 3);
      for (const [node, us] of nodes) emit({ bench: 'infer-layers', runtime: 'onnxruntime', threads: 1, batch, layer: node, usPerImage: Number(us.toFixed(1)) });
      const total = [...nodes.values()].reduce((a, b) => a + b, 0);
      emit({ bench: 'infer-layers', runtime: 'onnxruntime', threads: 1, batch, layer: 'total', usPerImage: Number(total.toFixed(1)), imagesPerSecond: Math.round(1e6 / total) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
