/**
 * Training runs: one model trained as a job (see job.ts) into a run folder, then evaluated on
 * the test set. `fmnist train` and each step of the pipeline call these.
 */
import { loadData, type DataOptions } from '../data/prepare.ts';
import type { TestMetrics } from '../evaluation/metrics.ts';
import { lockFolder } from '../io/lock.ts';
import { loadKernels, type Kernels } from '../kernels/index.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import { describeWidths } from '../models/mlp.ts';
import type { Sequential } from '../models/sequential.ts';
import type { EpochRecord, ProgressEvent } from '../training/fit.ts';
import { VERSION } from '../version.ts';
import { DEFAULT_CNN_CONFIG, DEFAULT_FEATURES_MLP_CONFIG, DEFAULT_MLP_CONFIG, type CnnConfig, type MlpConfig } from './configs.ts';
import { finishJob, jobConfigFile, jobData, startJob, trainJob, type FeatureSource, type JobData, type JobSpec, type Recipe } from './job.ts';
import { openTrainingRun, type ModelKind, type RunFolder } from './run-folder.ts';

export interface RunOptions extends DataOptions {
  /** Folder the run writes; created if needed. */
  outDir: string;
  /** Continue the run in outDir from its last checkpoint, with the configuration it was started with. */
  resume?: boolean;
  /** Kernels to use instead of loading the configured backend (a pipeline shares one). */
  kernels?: Kernels;
  onProgress?: (event: ProgressEvent) => void;
  /** One-line messages about what the run is doing. */
  log?: (message: string) => void;
  /** Stops the training between two batches when aborted (Ctrl-C); the last epoch's checkpoint remains for --resume. */
  signal?: AbortSignal;
}

/** What a finished training run reports. */
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

/** Trains the from-scratch MLP on pixels and evaluates it on the test set. */
export async function trainMlp(overrides: Partial<MlpConfig>, options: RunOptions): Promise<ModelRunResult> {
  return (await runTraining({ kind: 'mlp', config: { ...DEFAULT_MLP_CONFIG, ...overrides } }, options)).result;
}

/** Trains the CNN (with its softmax head) on pixels, augmented as configured, and evaluates it on the test set. */
export async function trainCnn(overrides: Partial<CnnConfig>, options: RunOptions): Promise<ModelRunResult> {
  return (await runTraining({ kind: 'cnn', config: { ...DEFAULT_CNN_CONFIG, ...overrides } }, options)).result;
}

/**
 * Trains the from-scratch MLP on a pipeline's saved CNN features, standardised with the
 * training features' mean and standard deviation (saved in model.json with the CNN's folder,
 * so the model can classify images).
 */
export async function trainFeaturesMlp(overrides: Partial<MlpConfig>, options: RunOptions & { features: FeatureSource }): Promise<ModelRunResult> {
  return (await runTraining({ kind: 'cnn-features-mlp', config: { ...DEFAULT_FEATURES_MLP_CONFIG, ...overrides }, features: options.features }, options)).result;
}

function describeJob(spec: JobSpec, plan: Recipe, data: JobData): string[] {
  if (spec.kind === 'mlp' && data.type === 'images') {
    return [`split: ${data.images.train.count} training, ${data.images.validation.count} validation images`, `model: MLP ${describeWidths(plan.architecture)}`];
  }
  if (spec.kind === 'cnn') {
    return [`model: CNN, channels ${spec.config.channels.join('-')}, ${spec.config.features} features; ${plan.train.count} training images`];
  }
  return [];
}

/**
 * A training run: holds the folder (a second writer is refused), opens it (a resumed run takes
 * its saved configuration), trains the job, checkpointing every epoch, then saves the model,
 * evaluates it on the test set and writes history.json, metrics.json and
 * test_probabilities.npy. The test images are read only then.
 */
export async function runTraining(given: JobSpec, options: RunOptions): Promise<{ result: ModelRunResult; model: Sequential; folder: RunFolder }> {
  const lock = lockFolder(options.outDir, `fmnist train ${given.kind}`, options.log);
  try {
    return await trainInFolder(given, options);
  } finally {
    lock.release();
  }
}

async function trainInFolder(given: JobSpec, options: RunOptions): Promise<{ result: ModelRunResult; model: Sequential; folder: RunFolder }> {
  const { folder, config } = openTrainingRun(options.outDir, given.config, options.resume ?? false);
  const spec = { ...given, config } as JobSpec;
  const kernels = options.kernels ?? (await loadKernels(config.backend, { threads: config.threads ?? undefined, onFallback: options.log }));
  const loaded = spec.kind === 'cnn-features-mlp' ? undefined : await loadData(options);
  const job = startJob(spec, (streams) => jobData(spec, streams, { loaded, allowModifiedData: options.allowModifiedData }));
  const { data, plan } = job;
  for (const line of describeJob(spec, plan, data)) options.log?.(line);
  folder.writeConfig(jobConfigFile(spec, data, VERSION, { node: process.version }));
  if (data.type === 'images') folder.writeSplit(data.images.indices, data.images.fileCount);

  const trained = await trainJob(spec, plan, job.streams, { kernels, checkpoint: folder.checkpointer(options.log), onProgress: options.onProgress, log: options.log, signal: options.signal });
  const { model } = trained;
  // The end every job shares (job-core.ts): the model's details, the test evaluation (flipped
  // where the model flips), the figures; the test images are read only now.
  const finished = await finishJob(job, trained, kernels);
  folder.writeHistory(finished.history);
  await folder.saveModel(model, finished.details);
  model.dispose();
  // The report's sample predictions and most confident mistakes are drawn from these.
  folder.writeTestProbabilities(finished.probabilities, finished.probabilities.length / NUM_CLASSES);
  folder.writeMetrics(finished.metrics);
  folder.removeCheckpoint();
  const { test, trainingSeconds, bestEpoch, parameterCount } = finished.metrics;
  return {
    model,
    folder,
    result: { kind: spec.kind, history: finished.history, bestEpoch, test, parameterCount, trainingSeconds, outDir: options.outDir },
  };
}
