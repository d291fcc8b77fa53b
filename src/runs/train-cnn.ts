import { augmentedPixelExamples, pixelExamples } from '../data/dataset.ts';
import { loadKernels } from '../kernels/index.ts';
import { cnnArchitecture } from '../models/cnn.ts';
import type { Sequential } from '../models/sequential.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_CNN_CONFIG, type CnnConfig } from './configs.ts';
import { forkStreams, prepareData, runConfigJson, type PreparedData } from './data-prep.ts';
import { checkRunFolder, trainModel, type ModelRunResult } from './train-model.ts';
import type { RunOptions } from './train-mlp.ts';

/**
 * Trains the CNN (with its softmax head) on pixels, with optional seeded augmentation, and
 * evaluates it on the test set. model.json records which layer gives the features.
 */
export async function trainCnn(
  overrides: Partial<CnnConfig>,
  options: RunOptions,
): Promise<{ result: ModelRunResult; model: Sequential; featureLayer: number; data: PreparedData }> {
  const config: CnnConfig = { ...DEFAULT_CNN_CONFIG, ...overrides };
  checkRunFolder(options.outDir, options.resume ?? false);
  const kernels = options.kernels ?? (await loadKernels(config.backend, { threads: config.threads ?? undefined, onFallback: options.log }));
  const streams = forkStreams(config.seed);
  const data = await prepareData(config, streams, options);
  const { architecture, featureLayer } = cnnArchitecture(config);
  options.log?.(`model: CNN, channels ${config.channels.join('-')}, ${config.features} features; ${data.train.count} training images`);
  const augment = config.augmentShift > 0 || config.augmentFlip;
  const { model, result } = trainModel({
    kind: 'cnn',
    kernels,
    architecture,
    config,
    train: augment
      ? augmentedPixelExamples(data.train, { maxShift: config.augmentShift, flip: config.augmentFlip }, streams.augment)
      : pixelExamples(data.train),
    validation: pixelExamples(data.validation),
    test: () => pixelExamples(data.test()),
    input: { type: 'pixels', scale: 1 / 255 },
    featureLayer,
    rngs: augment ? streams : { ...streams, augment: undefined },
    outDir: options.outDir,
    configJson: runConfigJson('cnn', config, data, { version: VERSION }),
    onProgress: options.onProgress,
    log: options.log,
  });
  return { result, model, featureLayer, data };
}
