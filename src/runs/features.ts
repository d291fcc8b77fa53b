import { existsSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { featureExamples, featureStatistics, identityOrder, pixelExamples, type Examples } from '../data/dataset.ts';
import type { LabelledImages } from '../data/load.ts';
import { UserError } from '../errors.ts';
import { loadNpy, saveNpy } from '../io/npy.ts';
import { loadKernels, type Kernels } from '../kernels/index.ts';
import type { Sequential } from '../models/sequential.ts';
import { Rng } from '../random/rng.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_FEATURES_MLP_CONFIG, type MlpConfig } from './configs.ts';
import { forkStreams } from './data-prep.ts';
import { checkRunFolder, trainModel, type ModelRunResult } from './train-model.ts';
import { mlpArchitecture, type RunOptions } from './train-mlp.ts';

export const FEATURE_PARTS = ['train', 'val', 'test'] as const;
export type FeaturePart = (typeof FEATURE_PARTS)[number];

/** The output of layer `featureLayer` for every example, in evaluation mode: [count, features]. */
export function extractFeatures(kernels: Kernels, model: Sequential, featureLayer: number, examples: Examples, batchSize = 128): Float32Array {
  const size = model.layers[featureLayer].outputShape.reduce((a, b) => a * b, 1);
  const features = new Float32Array(examples.count * size);
  const input = kernels.allocate(batchSize * examples.featureSize);
  const order = identityOrder(examples.count);
  // Evaluation mode draws no random numbers; the generator only satisfies the interface.
  const context = { training: false, rng: Rng.fromSeed(0) };
  for (let start = 0; start < examples.count; start += batchSize) {
    const batch = Math.min(batchSize, examples.count - start);
    examples.gather(input, order, start, batch, kernels);
    const output = model.forwardTo(input, batch, context, featureLayer);
    features.set(output.subarray(0, batch * size), start * size);
  }
  return features;
}

/** Whether `dir` holds all six feature files. */
export function featuresComplete(dir: string): boolean {
  return FEATURE_PARTS.every((part) => existsSync(join(dir, `${part}_x.npy`)) && existsSync(join(dir, `${part}_y.npy`)));
}

/**
 * Writes <part>_x.npy (float32 [N, F]) and <part>_y.npy (uint8 [N]) for the training,
 * validation and test images into `dir`, each file atomically.
 */
export function saveFeatures(
  kernels: Kernels,
  model: Sequential,
  featureLayer: number,
  parts: Record<FeaturePart, LabelledImages>,
  dir: string,
  log?: (message: string) => void,
): void {
  mkdirSync(dir, { recursive: true });
  for (const part of FEATURE_PARTS) {
    const images = parts[part];
    const started = performance.now();
    const features = extractFeatures(kernels, model, featureLayer, pixelExamples(images));
    const size = features.length / images.count;
    saveNpy(join(dir, `${part}_x.npy`), { dtype: 'float32', shape: [images.count, size], data: features });
    saveNpy(join(dir, `${part}_y.npy`), { dtype: 'uint8', shape: [images.count], data: images.labels });
    log?.(`features: ${part} ${images.count}x${size} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

/** One part's saved features and labels, checked: x float32 [N, F], y uint8 [N]. */
export function readFeaturePart(dir: string, part: FeaturePart): { x: Float32Array; size: number; y: Uint8Array } {
  const x = loadNpy(join(dir, `${part}_x.npy`));
  const y = loadNpy(join(dir, `${part}_y.npy`));
  if (x.dtype !== 'float32' || x.shape.length !== 2 || y.dtype !== 'uint8' || y.shape[0] !== x.shape[0]) {
    throw new UserError(`${dir}: ${part}_x.npy must be float32 [N, F] and ${part}_y.npy uint8 [N]; the features folder is damaged.`);
  }
  return { x: x.data, size: x.shape[1], y: y.data };
}

export interface FeaturesRunOptions extends RunOptions {
  /** Folder holding the six .npy files. */
  featuresDir: string;
  /** The CNN's run folder, recorded (relative to outDir) so the model can be used on images. */
  extractorDir: string;
  featureLayer: number;
}

/**
 * Trains the from-scratch MLP on saved CNN features, read back from the .npy files and
 * standardised with the training features' mean and standard deviation (saved in model.json).
 */
export async function trainFeaturesMlp(overrides: Partial<MlpConfig>, options: FeaturesRunOptions): Promise<ModelRunResult> {
  const config: MlpConfig = { ...DEFAULT_FEATURES_MLP_CONFIG, ...overrides };
  checkRunFolder(options.outDir, options.resume ?? false);
  const kernels = options.kernels ?? (await loadKernels(config.backend, { threads: config.threads ?? undefined, onFallback: options.log }));
  if (!featuresComplete(options.featuresDir)) {
    throw new UserError(`${options.featuresDir} lacks some of the feature files (train/val/test _x.npy and _y.npy); extract the features first.`);
  }
  const train = readFeaturePart(options.featuresDir, 'train');
  const validation = readFeaturePart(options.featuresDir, 'val');
  const { mean, std } = featureStatistics(train.x, train.size);
  const streams = forkStreams(config.seed);
  return trainModel({
    kind: 'cnn-features-mlp',
    kernels,
    architecture: mlpArchitecture(config, train.size),
    config,
    train: featureExamples(train.x, train.size, train.y, mean, std),
    validation: featureExamples(validation.x, validation.size, validation.y, mean, std),
    test: () => {
      const test = readFeaturePart(options.featuresDir, 'test');
      return featureExamples(test.x, test.size, test.y, mean, std);
    },
    input: {
      type: 'cnn-features',
      extractor: relative(options.outDir, options.extractorDir) || '.',
      featureLayer: options.featureLayer,
      mean: [...mean],
      std: [...std],
    },
    rngs: streams,
    outDir: options.outDir,
    configJson: { model: 'cnn-features-mlp', config, features: options.featuresDir, extractor: options.extractorDir, version: VERSION },
    onProgress: options.onProgress,
    log: options.log,
  }).result;
}
