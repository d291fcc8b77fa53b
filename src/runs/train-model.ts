import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NUM_CLASSES } from '../data/idx.ts';
import type { Examples } from '../data/dataset.ts';
import { UserError } from '../errors.ts';
import { CLASS_NAMES } from '../data/manifest.ts';
import { classificationReport, confusionMatrix, type ClassificationReport, type ConfusionMatrix } from '../evaluation/metrics.ts';
import { evaluate } from '../evaluation/predict.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { fileCheckpointer } from '../io/checkpoint.ts';
import { saveNpy } from '../io/npy.ts';
import { saveModel, type InputTransform } from '../io/model-file.ts';
import type { Kernels } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { Sequential, type Architecture } from '../models/sequential.ts';
import type { Rng } from '../random/rng.ts';
import { fit, type EpochRecord, type ProgressEvent } from '../training/fit.ts';
import { Adam, Sgd, type Optimizer } from '../training/optimizers.ts';
import type { TrainingConfig } from './configs.ts';

/** The kinds of model a run trains. */
export type ModelKind = 'mlp' | 'cnn' | 'cnn-features-mlp';

/** Softmax probabilities of the test images, float32 [10000, 10], in a model's run folder. */
export const TEST_PROBABILITIES_FILE = 'test_probabilities.npy';

/** The test figures of a model, as written to metrics.json. */
export interface TestMetrics {
  accuracy: number;
  loss: number;
  confusionMatrix: ConfusionMatrix;
  report: ClassificationReport;
}

/** What a finished training step reports (also read back from metrics.json when a run resumes). */
export interface ModelRunResult {
  kind: ModelKind;
  history: EpochRecord[];
  bestEpoch: number;
  test: TestMetrics;
  parameterCount: number;
  /** Sum of the epochs' seconds: the same whether or not the run was interrupted. */
  trainingSeconds: number;
  outDir: string;
}

export interface TrainModelJob {
  kind: ModelKind;
  kernels: Kernels;
  architecture: Architecture;
  config: TrainingConfig;
  train: Examples;
  validation: Examples;
  /** The test examples, built only when training is over. */
  test: () => Examples;
  input: InputTransform;
  /** Index of the layer whose output are the model's features, where it has them. */
  featureLayer?: number;
  rngs: { init: Rng; shuffle: Rng; dropout: Rng; augment?: Rng };
  outDir: string;
  /** The run's config.json content (written before training starts). */
  configJson: unknown;
  onProgress?: (event: ProgressEvent) => void;
  log?: (message: string) => void;
}

export function makeOptimizer(kernels: Kernels, config: TrainingConfig, parameterCount: number): Optimizer {
  if (config.optimizer === 'adam') return new Adam(kernels, parameterCount, { weightDecay: config.weightDecay });
  return new Sgd(kernels, parameterCount, { momentum: config.momentum, nesterov: config.nesterov, weightDecay: config.weightDecay });
}

/** Test figures of a model's predictions against the labels. */
export function testMetrics(labels: Uint8Array, predictions: Uint8Array, accuracy: number, loss: number): TestMetrics {
  const matrix = confusionMatrix(labels, predictions, NUM_CLASSES);
  return { accuracy, loss, confusionMatrix: matrix, report: classificationReport(matrix, CLASS_NAMES) };
}

/** A run folder that already holds a training run must be resumed explicitly, never overwritten. */
export function checkRunFolder(outDir: string, resume: boolean): void {
  const started = existsSync(join(outDir, 'config.json'));
  if (started && !resume) {
    throw new UserError(`${outDir} already holds a run; pass --resume ${outDir} to continue it, or choose another --out.`);
  }
  if (!started && resume) throw new UserError(`${outDir} holds no run to resume (no config.json); check the folder.`);
}

/**
 * Builds, initialises and trains a model, checkpointing after every epoch in outDir/checkpoint
 * (a checkpoint found there is continued from); then saves the model and evaluates it on the
 * test set. Writes config.json, history.json, model.json, model.safetensors, metrics.json and
 * test_probabilities.npy.
 */
export function trainModel(job: TrainModelJob): { model: Sequential; result: ModelRunResult } {
  const { kernels, config } = job;
  mkdirSync(job.outDir, { recursive: true });
  if (!existsSync(join(job.outDir, 'config.json'))) writeJsonAtomic(join(job.outDir, 'config.json'), job.configJson);
  const model = new Sequential(kernels, job.architecture);
  model.initialize(job.rngs.init);
  const loss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES);
  job.log?.(`${job.kind}: ${model.parameterCount} parameters; kernels: ${kernels.description}`);

  const checkpointDir = join(job.outDir, 'checkpoint');
  const checkpoint = fileCheckpointer(checkpointDir);
  const result = fit({
    kernels,
    model,
    loss,
    optimizer: makeOptimizer(kernels, config, model.parameterCount),
    train: job.train,
    validation: job.validation,
    epochs: config.epochs,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    schedule: { name: config.schedule },
    patience: config.patience,
    shuffleRng: job.rngs.shuffle,
    dropoutRng: job.rngs.dropout,
    otherRngs: job.rngs.augment ? [job.rngs.augment] : [],
    checkpoint,
    onProgress: job.onProgress,
  });
  const trainingSeconds = result.history.reduce((sum, record) => sum + record.seconds, 0);
  writeJsonAtomic(join(job.outDir, 'history.json'), result.history);
  saveModel(job.outDir, model, { kind: job.kind, input: job.input, classNames: CLASS_NAMES, featureLayer: job.featureLayer });

  const testExamples = job.test();
  const evaluation = evaluate(kernels, model, loss, testExamples);
  const test = testMetrics(testExamples.labels, evaluation.predictions, evaluation.accuracy, evaluation.loss);
  // The report's sample predictions and most confident mistakes are drawn from these.
  saveNpy(join(job.outDir, TEST_PROBABILITIES_FILE), { dtype: 'float32', shape: [testExamples.count, NUM_CLASSES], data: evaluation.probabilities });
  const best = result.history[result.bestEpoch - 1];
  writeJsonAtomic(join(job.outDir, 'metrics.json'), {
    kind: job.kind,
    test,
    validation: { accuracy: best.valAccuracy, loss: best.valLoss },
    bestEpoch: result.bestEpoch,
    epochsRun: result.history.length,
    stoppedEarly: result.stoppedEarly,
    trainingSeconds,
    parameterCount: model.parameterCount,
    backend: kernels.description,
  });
  rmSync(checkpointDir, { recursive: true, force: true });
  return {
    model,
    result: {
      kind: job.kind,
      history: result.history,
      bestEpoch: result.bestEpoch,
      test,
      parameterCount: model.parameterCount,
      trainingSeconds,
      outDir: job.outDir,
    },
  };
}
