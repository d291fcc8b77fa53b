/**
 * `npm run bench -- webgpu`: the WebGPU backend against the native backend and PyTorch. JSON
 * lines: the adapter; training steps of the reference CNN and the default CNN at batch 128
 * (images/s, a fixed batch: the kernels alone, as bench/pytorch_reference.py times PyTorch) on
 * webgpu and on the native backend on 2 threads and on every core; PyTorch on the same GPU
 * (CUDA, float32, eager) where Python has torch with CUDA; inference of the default CNN at batch
 * 1 and 1,024. With `--pipeline`, `fmnist pipeline --backend webgpu` as a library call after:
 * its wall time and the three test accuracies. On SwiftShader (no GPU) the figures mean nothing
 * for speed, only that it runs. scripts/gpu-bench.sh runs this on a machine with a GPU.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTestSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { ourClassifier } from '../src/inference/classifier.ts';
import type { Kernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWebGpuKernels } from '../src/kernels/webgpu/node.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { saveModel } from '../src/models/model-file.ts';
import { referenceCnnArchitecture } from '../src/models/reference-cnn.ts';
import { Sequential, type Architecture } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { DEFAULT_CNN_CONFIG } from '../src/runs/configs.ts';
import { runPipeline } from '../src/runs/pipeline.ts';
import { Adam } from '../src/training/optimizers.ts';
import { fixedBatchStep, median } from './training-step.ts';

const BATCH = 128;
const ROUNDS = 3;
/** Seconds each timed turn lasts at least. */
const TURN_SECONDS = 2;

/**
 * Images per second of training steps (forward, backward, Adam) on one fixed batch, after three
 * steps of warm-up; the time ends when the last step's loss has been read (a GPU has finished).
 */
async function stepSpeed(kernels: Kernels, architecture: Architecture, batch: number): Promise<number> {
  const step = fixedBatchStep({ Sequential, SoftmaxCrossEntropy, Adam, Rng }, kernels, architecture, batch);
  for (let i = 0; i < 3; i++) step();
  await step.finished();
  let steps = 0;
  const started = performance.now();
  while (performance.now() - started < TURN_SECONDS * 1000) {
    for (let i = 0; i < 10; i++) step();
    steps += 10;
    await step.finished();
  }
  const speed = (steps * batch) / ((performance.now() - started) / 1000);
  step.dispose();
  return speed;
}

/** PyTorch's images/s for the reference CNN on CUDA at `batch`, or null where Python has no torch with CUDA. */
function pytorchCuda(batch: number): number | null {
  const script = fileURLToPath(new URL('pytorch_reference.py', import.meta.url));
  const python = process.env.FMNIST_PYTHON ?? 'python3';
  const run = spawnSync(python, [script, '--device', 'cuda', '--batch', String(batch), '--batches', '200'], { encoding: 'utf8' });
  if (run.status !== 0) return null;
  return (JSON.parse(run.stdout) as { imagesPerSecond: number }).imagesPerSecond;
}

export async function benchWebGpu(emit: (record: object) => void, options: { pipeline?: boolean } = {}): Promise<void> {
  const gpu = await loadWebGpuKernels();
  emit({ bench: 'webgpu', adapter: gpu.adapter, kernels: gpu.description });
  const cores = availableParallelism();
  const models: [string, Architecture][] = [
    ['reference-cnn', referenceCnnArchitecture()],
    ['default-cnn', cnnArchitecture(DEFAULT_CNN_CONFIG).architecture],
  ];
  const contenders: { backend: string; threads: number | null; load: () => Kernels }[] = [{ backend: 'webgpu', threads: null, load: () => gpu }];
  if (nativeBuildPresent()) for (const threads of [...new Set([2, cores])]) contenders.push({ backend: 'native', threads, load: () => loadNativeKernels({ threads }) });
  for (const [model, architecture] of models) {
    const speeds = contenders.map(() => [] as number[]);
    const torch: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, contender] of contenders.entries()) speeds[i].push(await stepSpeed(contender.load(), architecture, BATCH));
      if (model === 'reference-cnn') {
        const speed = pytorchCuda(BATCH);
        if (speed !== null) torch.push(speed);
      }
    }
    const webgpu = median(speeds[0]);
    for (const [i, contender] of contenders.entries()) {
      emit({ bench: 'webgpu-train', model, batch: BATCH, backend: contender.backend, threads: contender.threads, imagesPerSecond: Math.round(median(speeds[i])), imagesPerSecondEach: speeds[i].map(Math.round) });
      if (i > 0) emit({ bench: 'webgpu-vs-native', model, threads: contender.threads, ratio: Number((webgpu / median(speeds[i])).toFixed(2)) });
    }
    if (torch.length > 0) {
      emit({ bench: 'webgpu-train', model, batch: BATCH, backend: 'pytorch-cuda', imagesPerSecond: Math.round(median(torch)), imagesPerSecondEach: torch.map(Math.round) });
      emit({ bench: 'webgpu-vs-pytorch-cuda', model, ratio: Number((webgpu / median(torch)).toFixed(2)) });
    } else if (model === 'reference-cnn') {
      emit({ bench: 'webgpu-train', note: 'no PyTorch with CUDA here (FMNIST_PYTHON names the Python): no reference speed' });
    }
  }

  // Inference: a default CNN (He-initialised: the weights do not change the work) classifying test images.
  const location = await locateData({ download: false });
  const pixels = loadTestSet(location.dir).data.pixels;
  const dir = join(tmpdir(), `fmnist-bench-webgpu-${process.pid}`);
  const cnn = new Sequential(gpu, cnnArchitecture(DEFAULT_CNN_CONFIG).architecture);
  cnn.initialize(Rng.fromSeed(1));
  await saveModel(dir, cnn, { kind: 'cnn', input: { type: 'pixels', scale: 1 / 255 }, classNames: [], testTimeFlip: DEFAULT_CNN_CONFIG.testFlip });
  cnn.dispose();
  const classifier = await ourClassifier(dir, gpu, 'default-cnn');
  for (const batch of [1, 1024]) {
    const images = pixels.subarray(0, batch * 784);
    await classifier.classify(images, batch);
    let calls = 0;
    const started = performance.now();
    while (calls < 3 || performance.now() - started < TURN_SECONDS * 1000) {
      await classifier.classify(images, batch);
      calls++;
    }
    emit({ bench: 'webgpu-infer', model: 'default-cnn', batch, testTimeFlip: DEFAULT_CNN_CONFIG.testFlip, imagesPerSecond: Math.round((calls * batch) / ((performance.now() - started) / 1000)) });
  }

  if (options.pipeline) {
    const outDir = join(tmpdir(), `fmnist-bench-webgpu-pipeline-${process.pid}`);
    const started = performance.now();
    const summary = await runPipeline({ seed: 42, backend: 'webgpu' }, { outDir, data: { dataDir: location.dir } });
    const { models } = summary;
    emit({
      bench: 'webgpu-pipeline',
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      featureSeconds: Number(summary.featureSeconds.toFixed(1)),
      testAccuracy: { mlp: models.mlp.testAccuracy, cnn: models.cnn.testAccuracy, cnnFeaturesMlp: models.cnnFeaturesMlp.testAccuracy },
      validationAccuracy: { mlp: models.mlp.validationAccuracy, cnn: models.cnn.validationAccuracy, cnnFeaturesMlp: models.cnnFeaturesMlp.validationAccuracy },
      backend: summary.backend,
    });
  }
}
