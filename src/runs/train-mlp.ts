import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pixelExamples } from '../data/dataset.ts';
import { NUM_CLASSES, PIXELS } from '../data/idx.ts';
import { loadTestSet, loadTrainingSet, type FileCheck } from '../data/load.ts';
import { locateData, type DataLocation, type LocateOptions } from '../data/locate.ts';
import { CLASS_NAMES } from '../data/manifest.ts';
import { stratifiedSample, stratifiedSplit } from '../data/split.ts';
import { classificationReport, confusionMatrix, type ClassificationReport, type ConfusionMatrix } from '../evaluation/metrics.ts';
import { evaluate } from '../evaluation/predict.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { saveModel } from '../io/model-file.ts';
import { loadKernels, type Kernels } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import type { LayerSpec } from '../layers/index.ts';
import { Sequential, type Architecture } from '../models/sequential.ts';
import { Rng } from '../random/rng.ts';
import { fit, type EpochRecord, type ProgressEvent } from '../training/fit.ts';
import { Adam, Sgd, type Optimizer } from '../training/optimizers.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_MLP_CONFIG, type MlpConfig } from './mlp-config.ts';

export interface RunOptions {
  /** Folder the run writes; created if needed. */
  outDir: string;
  /** Where to look for the data (see locateData). */
  data?: LocateOptions;
  /** Load data files that differ from the official release. */
  allowModifiedData?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  /** One-line messages about what the run is doing. */
  log?: (message: string) => void;
}

/** The test figures of a model, as written to metrics.json. */
export interface TestMetrics {
  accuracy: number;
  loss: number;
  confusionMatrix: ConfusionMatrix;
  report: ClassificationReport;
}

export interface MlpRunResult {
  config: MlpConfig;
  history: EpochRecord[];
  bestEpoch: number;
  test: TestMetrics;
  parameterCount: number;
  trainingSeconds: number;
  outDir: string;
}

/** The MLP as layers: 784 -> hidden (ReLU, dropout) -> 10. */
export function mlpArchitecture(config: Pick<MlpConfig, 'hidden' | 'dropout' | 'init'>, inputSize = PIXELS): Architecture {
  const layers: LayerSpec[] = [{ type: 'dense', units: config.hidden, init: config.init }, { type: 'relu' }];
  if (config.dropout > 0) layers.push({ type: 'dropout', rate: config.dropout });
  layers.push({ type: 'dense', units: NUM_CLASSES, init: config.init });
  return { inputShape: [inputSize], layers };
}

export function makeOptimizer(kernels: Kernels, config: MlpConfig, parameterCount: number): Optimizer {
  if (config.optimizer === 'adam') return new Adam(kernels, parameterCount, { weightDecay: config.weightDecay });
  return new Sgd(kernels, parameterCount, {
    momentum: config.momentum,
    nesterov: config.nesterov,
    weightDecay: config.weightDecay,
  });
}

/** Test figures of a model's predictions against the labels. */
export function testMetrics(labels: Uint8Array, predictions: Uint8Array, accuracy: number, loss: number): TestMetrics {
  const matrix = confusionMatrix(labels, predictions, NUM_CLASSES);
  return { accuracy, loss, confusionMatrix: matrix, report: classificationReport(matrix, CLASS_NAMES) };
}

/**
 * Trains the from-scratch MLP on Fashion-MNIST pixels and evaluates it on the test set.
 * Writes config.json, history.json, metrics.json, model.json and model.safetensors to
 * `options.outDir`. The test images are loaded only after training has finished.
 */
export async function trainMlp(overrides: Partial<MlpConfig>, options: RunOptions): Promise<MlpRunResult> {
  const config: MlpConfig = { ...DEFAULT_MLP_CONFIG, ...overrides };
  const log = options.log ?? (() => {});
  const kernels = await loadKernels(config.backend, { threads: config.threads ?? undefined, onFallback: log });
  const location = await locateData(options.data);
  log(`data: ${location.dir} (${location.origin})`);
  const loadOptions = { allowModified: options.allowModifiedData };
  const training = loadTrainingSet(location.dir, loadOptions);

  const root = Rng.fromSeed(config.seed);
  const splitRng = root.fork();
  const initRng = root.fork();
  const shuffleRng = root.fork();
  const dropoutRng = root.fork();
  const sampleRng = root.fork();

  const split = stratifiedSplit(training.data, config.validationFraction, splitRng);
  const train = config.trainLimit === null ? split.train : stratifiedSample(split.train, config.trainLimit, sampleRng);
  log(`split: ${train.count} training, ${split.validation.count} validation images`);

  const model = new Sequential(kernels, mlpArchitecture(config));
  model.initialize(initRng);
  const loss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES);
  log(`model: ${describeArchitecture(model)}, ${model.parameterCount} parameters; kernels: ${kernels.description}`);

  mkdirSync(options.outDir, { recursive: true });
  writeJsonAtomic(join(options.outDir, 'config.json'), runConfigJson(config, location, training.checks));

  const started = performance.now();
  const result = fit({
    kernels,
    model,
    loss,
    optimizer: makeOptimizer(kernels, config, model.parameterCount),
    train: pixelExamples(train),
    validation: pixelExamples(split.validation),
    epochs: config.epochs,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    schedule: { name: config.schedule },
    patience: config.patience,
    shuffleRng,
    dropoutRng,
    onProgress: options.onProgress,
  });
  const trainingSeconds = (performance.now() - started) / 1000;
  writeJsonAtomic(join(options.outDir, 'history.json'), result.history);
  saveModel(options.outDir, model, { kind: 'mlp', input: { type: 'pixels', scale: 1 / 255 }, classNames: CLASS_NAMES });

  const testSet = loadTestSet(location.dir, loadOptions);
  const evaluation = evaluate(kernels, model, loss, pixelExamples(testSet.data));
  const test = testMetrics(testSet.data.labels, evaluation.predictions, evaluation.accuracy, evaluation.loss);
  const best = result.history[result.bestEpoch - 1];
  writeJsonAtomic(join(options.outDir, 'metrics.json'), {
    test,
    validation: { accuracy: best.valAccuracy, loss: best.valLoss },
    bestEpoch: result.bestEpoch,
    epochsRun: result.history.length,
    stoppedEarly: result.stoppedEarly,
    trainingSeconds,
    parameterCount: model.parameterCount,
    backend: kernels.description,
  });
  return {
    config,
    history: result.history,
    bestEpoch: result.bestEpoch,
    test,
    parameterCount: model.parameterCount,
    trainingSeconds,
    outDir: options.outDir,
  };
}

/** "784-128-10" style summary of a dense network's widths. */
export function describeArchitecture(model: Sequential): string {
  const widths = [model.architecture.inputShape.join('x')];
  for (const spec of model.architecture.layers) if (spec.type === 'dense') widths.push(String(spec.units));
  return widths.join('-');
}

function runConfigJson(config: MlpConfig, location: DataLocation, checks: FileCheck[]) {
  return {
    model: 'mlp',
    config,
    data: { dir: location.dir, origin: location.origin, files: checks.map(({ file, sha256, status }) => ({ file, sha256, status })) },
    software: { node: process.version, fmnist: VERSION },
  };
}
