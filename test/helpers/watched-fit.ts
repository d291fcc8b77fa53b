import type { LabelledImages } from '../../src/data/verify.ts';
import { pixelExamples } from '../../src/data/dataset.ts';
import { jsKernels } from '../../src/kernels/index.ts';
import { SoftmaxCrossEntropy } from '../../src/layers/softmax-cross-entropy.ts';
import { mlpArchitecture } from '../../src/models/mlp.ts';
import { Sequential } from '../../src/models/sequential.ts';
import { fit, type FitOptions } from '../../src/training/fit.ts';
import { Adam, type Optimizer } from '../../src/training/optimizers.ts';
import { host, Rng } from './random.ts';

/** What a watched fit lets a test see, as it happens. */
export interface Watchers {
  /** Seeds the initial weights, the shuffles and dropout. Default 9. */
  seed?: number;
  /** The model as initialised, before the first step. */
  onStart?: (model: Sequential) => void;
  /** After each batch: `fast`, the weights right after the optimiser's step (before fit does anything more with them), and the model. */
  onBatch?: (fast: Float32Array, model: Sequential) => void;
  /** After each epoch (its validation done). */
  onEpochEnd?: (model: Sequential) => void;
}

/**
 * A short fit (3 epochs unless `options` says otherwise, Adam, batch 64, learning rate 0.01,
 * triangular schedule) of a 784-8-10 MLP on `images`, on the reference kernels, with its
 * optimiser watched: a test follows the weights step by step and checks what fit keeps.
 */
export async function watchedFit(images: LabelledImages, options: Partial<FitOptions>, watchers: Watchers = {}) {
  const kernels = jsKernels;
  const model = new Sequential(kernels, mlpArchitecture({ hidden: 8, dropout: 0, init: 'he' }));
  const rng = Rng.fromSeed(watchers.seed ?? 9);
  model.initialize(rng.fork());
  watchers.onStart?.(model);
  const adam = new Adam(kernels, model.parameterCount);
  let fast = new Float32Array(0);
  const optimizer: Optimizer = {
    step(parameters, learningRate, scales) {
      adam.step(parameters, learningRate, scales);
      fast = Float32Array.from(host(model.values));
    },
    state: () => adam.state(),
    restore: (state) => adam.restore(state),
    dispose: () => adam.dispose(),
  };
  const result = await fit({
    kernels,
    model,
    loss: new SoftmaxCrossEntropy(kernels, 10),
    optimizer,
    train: pixelExamples(images),
    validation: pixelExamples(images),
    epochs: 3,
    batchSize: 64,
    learningRate: 0.01,
    schedule: { name: 'triangular' },
    patience: 0,
    shuffleRng: rng.fork(),
    dropoutRng: rng.fork(),
    ...options,
    onProgress: (event) => {
      if (event.type === 'batch') watchers.onBatch?.(fast, model);
      if (event.type === 'epoch-end') watchers.onEpochEnd?.(model);
    },
  });
  return { model, result };
}
