import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { augmentedPixelExamples, identityOrder, pixelExamples } from '../src/data/dataset.ts';
import { loadTrainingSet } from '../src/data/load.ts';
import { locateData } from '../src/data/locate.ts';
import { selectExamples } from '../src/data/split.ts';
import { IMAGE_SHAPE } from '../src/data/idx.ts';
import { Interrupted } from '../src/errors.ts';
import { evaluate } from '../src/evaluation/predict.ts';
import { jsKernels, loadKernels } from '../src/kernels/index.ts';
import { SoftmaxCrossEntropy } from '../src/layers/softmax-cross-entropy.ts';
import { cnnArchitecture } from '../src/models/cnn.ts';
import { mlpArchitecture } from '../src/models/mlp.ts';
import { Sequential } from '../src/models/sequential.ts';
import { Rng } from '../src/random/rng.ts';
import { DEFAULT_CNN_CONFIG, type CnnConfig } from '../src/runs/configs.ts';
import { evaluateSavedModel } from '../src/runs/evaluate.ts';
import { trainCnn } from '../src/runs/train.ts';
import { learningRateAt } from '../src/training/schedules.ts';
import { tempDir } from './helpers/idx-files.ts';
import { host } from './helpers/random.ts';
import { watchedFit } from './helpers/watched-fit.ts';

const location = await locateData();
const training = loadTrainingSet(location.dir).data;
const images = selectExamples(training, Array.from({ length: 600 }, (_, i) => i));

test('the triangular schedule rises from a tenth of the peak to the peak over the warm-up, then falls to 0', () => {
  const schedule = { name: 'triangular' as const, warmup: 0.25 };
  assert.equal(learningRateAt(schedule, 1, 0, 8), 0.1);
  assert.ok(Math.abs(learningRateAt(schedule, 1, 1, 8) - 0.55) < 1e-12);
  assert.equal(learningRateAt(schedule, 1, 2, 8), 1);
  assert.ok(Math.abs(learningRateAt(schedule, 1, 5, 8) - 0.5) < 1e-12);
  assert.equal(learningRateAt(schedule, 1, 8, 8), 0);
});

test('random erasing overwrites one rectangle of noise in the images it picks, and only those', () => {
  const order = identityOrder(images.count);
  const plain = new Float32Array(64 * 784);
  pixelExamples(images).gather(plain, order, 0, 64, jsKernels);
  const erased = new Float32Array(64 * 784);
  augmentedPixelExamples(images, { maxShift: 0, flip: false, erase: 0.5 }, Rng.fromSeed(1)).gather(erased, order, 0, 64, jsKernels);
  let changed = 0;
  for (let b = 0; b < 64; b++) {
    const rows = new Set<number>();
    const columns = new Set<number>();
    for (let i = 0; i < 784; i++) {
      if (erased[b * 784 + i] !== plain[b * 784 + i]) {
        rows.add(Math.floor(i / 28));
        columns.add(i % 28);
      }
    }
    if (rows.size === 0) continue;
    changed++;
    // The changed pixels lie in one rectangle covering at most 40% of the image.
    assert.ok(rows.size * columns.size <= 0.4 * 784 + 28, `image ${b}: ${rows.size}x${columns.size}`);
  }
  assert.ok(changed > 16 && changed < 48, `${changed} of 64 images erased at probability 0.5`);
});

test('test-time flipping averages the probabilities of each image and its mirror image', async () => {
  const kernels = jsKernels;
  const model = new Sequential(kernels, mlpArchitecture({ hidden: 8, dropout: 0, init: 'he' }));
  model.initialize(Rng.fromSeed(2));
  const loss = new SoftmaxCrossEntropy(kernels, 10);
  const examples = pixelExamples(images);
  const both = await evaluate(kernels, model, loss, examples, 128, IMAGE_SHAPE);
  const straight = (await evaluate(kernels, model, loss, examples, 128)).probabilities;
  // Each image mirrored by hand, left to right.
  const mirrored = new Uint8Array(images.count * 784);
  for (let row = 0; row < images.count * 28; row++) for (let x = 0; x < 28; x++) mirrored[row * 28 + x] = images.pixels[row * 28 + 27 - x];
  const flipped = (await evaluate(kernels, model, loss, pixelExamples({ ...images, pixels: mirrored }), 128)).probabilities;
  for (let i = 0; i < both.probabilities.length; i++) assert.ok(Math.abs(both.probabilities[i] - (straight[i] + flipped[i]) / 2) < 1e-6);
});

test('a moving average of the weights is what fit keeps, as computed step by step in float64', async () => {
  let expected = new Float64Array(0);
  let steps = 0;
  const { model } = await watchedFit(
    images,
    { loss: new SoftmaxCrossEntropy(jsKernels, 10, 0.1), epochs: 1, emaDecay: 0.9 },
    {
      seed: 3,
      onStart: (initial) => {
        expected = Float64Array.from(host(initial.values));
      },
      onBatch: (_fast, trained) => {
        steps++;
        const decay = Math.min(0.9, (1 + steps) / (10 + steps));
        const values = host(trained.values);
        for (let i = 0; i < expected.length; i++) expected[i] = decay * expected[i] + (1 - decay) * values[i];
      },
    },
  );
  let worst = 0;
  const kept = host(model.values);
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(kept[i] - expected[i]));
  assert.ok(worst < 1e-5, `kept weights differ from the average by ${worst}`);
});

test('a CNN with every recipe option resumes to the same weights, and its saved model evaluates as trained (flip included)', { timeout: 240_000 }, async () => {
  // Every option that keeps state across epochs or draws numbers: the weight average, Lookahead,
  // the averaged epochs, alternating flips; and those that set up the training: whitening,
  // Dirac initialisation, the shifts' learning rate.
  const kernels = await loadKernels('auto', { threads: 1 });
  const config: CnnConfig = {
    ...DEFAULT_CNN_CONFIG,
    epochs: 2,
    trainLimit: 500,
    channels: [8, 8, 8, 8, 8],
    features: 16,
    threads: 1,
    batchNorm: true,
    labelSmoothing: 0.1,
    emaDecay: 0.9,
    augmentErase: 0.5,
    augmentFlip: true,
    alternateFlip: true,
    testFlip: true,
    schedule: 'triangular',
    lookahead: 3,
    averageEpochs: 2,
    whiten: true,
    diracInit: true,
    batchNormBiasLr: 4,
  };
  const whole = tempDir();
  await trainCnn(config, { outDir: whole, kernels });
  const stopped = tempDir();
  const controller = new AbortController();
  await assert.rejects(
    trainCnn(config, {
      outDir: stopped,
      kernels,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.type === 'epoch-end' && event.record.epoch === 1) controller.abort(new Interrupted('SIGINT'));
      },
    }),
    Interrupted,
  );
  const resumed = await trainCnn(config, { outDir: stopped, kernels, resume: true });
  assert.deepEqual(readFileSync(join(stopped, 'model.safetensors')), readFileSync(join(whole, 'model.safetensors')));
  const description = JSON.parse(readFileSync(join(stopped, 'model.json'), 'utf8')) as { testTimeFlip?: boolean; architecture: ReturnType<typeof cnnArchitecture>['architecture'] };
  assert.equal(description.testTimeFlip, true);
  assert.ok(description.architecture.layers.some((layer) => layer.type === 'batchnorm'));
  const again = await evaluateSavedModel(stopped, { kernels });
  assert.equal(again.test.accuracy, resumed.test.accuracy);
});
