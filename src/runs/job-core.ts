/**
 * The training job: how every model of the project is trained, whoever asks (`fmnist train`,
 * the pipeline, a search trial, the web app's worker). A job is its spec (the model kind and
 * configuration). Its start is `startJob`: the random streams forked once from the
 * configuration's seed, the data, and the recipe (the architecture, the examples with the
 * augmentation the configuration asks for, the model's input transform, test-time flipping).
 * `trainJob` trains it. Its end is `finishJob`: what model.json says of the model, the test
 * evaluation (flipped where the recipe flips), and the figures of metrics.json. A search trial
 * of a configuration therefore trains exactly as `fmnist train` does for the same epochs, and
 * the web app's run gives the files and figures of `fmnist train` for the same settings.
 *
 * This file reads no files, so the browser runs it as it is; job.ts adds the data of the MLP on
 * a pipeline's saved features, read from its folder.
 */
import { augmentedPixelExamples, featureExamples, featureStatistics, pixelExamples, type Examples, type FeaturePart } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import { UserError } from '../errors.ts';
import { CLASS_NAMES } from '../data/manifest.ts';
import { testMetrics, type TestMetrics } from '../evaluation/metrics.ts';
import { prepareData, splitIndices, type LoadedData, type PreparedData, type SplitIndices, type SplitSettings } from '../data/split.ts';
import { evaluate, testFlipShape } from '../evaluation/predict.ts';
import type { Kernels } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { cnnArchitecture } from '../models/cnn.ts';
import { convolutionLayers, setDirac, setWhitening, whiteningFilters } from '../models/cnn-init.ts';
import { encodeModel, type InputTransform, type ModelDescription, type ModelDetails } from '../models/model-format.ts';
import { mlpArchitecture } from '../models/mlp.ts';
import { Sequential, type Architecture } from '../models/sequential.ts';
import { forkStreams, type RunStreams } from '../random/streams.ts';
import { fit, type Checkpointer, type EpochRecord, type FitResult, type ProgressEvent, type TrainingControl } from '../training/fit.ts';
import { createOptimizer } from '../training/optimizers.ts';
import type { CnnConfig, MlpConfig } from './configs.ts';
import { jsonFileText, RUN_FILES, testProbabilitiesFile, type ModelKind, type RunConfigFile, type RunMetrics } from './run-files.ts';

/** A pipeline's saved CNN features, and the CNN that computes them from images. */
export interface FeatureSource {
  /** The features folder (train/val/test _x.npy and _y.npy). */
  dir: string;
  /** The CNN's run folder. */
  extractorDir: string;
  /** The CNN layer whose output the features are. */
  featureLayer: number;
}

/** What a job trains: a model kind and its configuration. */
export type JobSpec =
  | { kind: 'mlp'; config: MlpConfig }
  | { kind: 'cnn'; config: CnnConfig }
  | { kind: 'cnn-features-mlp'; config: MlpConfig; features: FeatureSource };

/** A job's data: images split for it (the MLP and the CNN), or a pipeline's features. */
export type JobData =
  | { type: 'images'; images: PreparedData }
  | {
      type: 'features';
      train: FeaturePart;
      validation: FeaturePart;
      test: () => FeaturePart;
      /** Each image's features are the mean of its own and its mirror image's (features.json). */
      flipAverage: boolean;
    };

/** How a job trains, as its spec, data and streams determine it. */
export interface Recipe {
  architecture: Architecture;
  /** Index of the layer whose output are the model's features, where it has them (the CNN). */
  featureLayer?: number;
  train: Examples;
  validation: Examples;
  /** The test examples, built only when training is over. */
  test: () => Examples;
  /** How raw inputs become the model's input; saved with the model. */
  input: InputTransform;
  /** Evaluate each image and its mirror image, averaging the probabilities (test-time flipping). */
  testTimeFlip: boolean;
  /** The first convolution's whitening filters, from the training split (a CNN with `whiten`). */
  whitening?: Float32Array;
}

/**
 * A pixel model's data: the training file split (and, for a quick run, sampled) from the job's
 * streams, or the split given (a pipeline extracting the features of the images its CNN
 * trained on).
 */
export function imageJobData(
  settings: SplitSettings,
  streams: RunStreams,
  source: { loaded: LoadedData; indices?: SplitIndices; allowModifiedData?: boolean },
): JobData {
  const split = source.indices ? { indices: source.indices } : streams;
  return { type: 'images', images: prepareData(source.loaded, settings, split, { allowModifiedData: source.allowModifiedData }) };
}

/**
 * The split a pixel model's job with this seed draws from the training file's labels, before it
 * trains: the indices of its training images (a stratified sample of them where `trainLimit`
 * is set) and of its validation images, the same as the job's own split (imageJobData draws
 * from the same two streams of the same seed).
 */
export function runSplit(labels: Uint8Array, settings: SplitSettings & { seed: number }): SplitIndices {
  const streams = forkStreams(settings.seed);
  return splitIndices(labels, settings.validationFraction, settings.trainLimit, streams.split, streams.sample);
}

/** The architecture, examples and input transform of a job. The CNN trains on augmented images where its configuration asks. */
export function recipe(spec: JobSpec, data: JobData, streams: RunStreams): Recipe {
  if (data.type === 'features') {
    if (spec.kind !== 'cnn-features-mlp') throw new Error(`a ${spec.kind} job trains on images, not features`);
    const { config } = spec;
    if (config.augmentShift > 0 || config.augmentFlip || config.augmentErase > 0 || config.testFlip) {
      throw new UserError('the MLP on the features sees no images: leave augmentation and test-time flipping off (augmentShift, augmentFlip, augmentErase, testFlip)');
    }
    const { mean, std } = featureStatistics(data.train.x, data.train.size);
    const examples = (part: FeaturePart) => featureExamples(part.x, part.size, part.y, mean, std);
    return {
      architecture: mlpArchitecture(spec.config, data.train.size),
      train: examples(data.train),
      validation: examples(data.validation),
      test: () => examples(data.test()),
      input: {
        type: 'cnn-features',
        extractor: spec.features.extractorDir,
        featureLayer: spec.features.featureLayer,
        ...(data.flipAverage ? { flipAverage: true } : {}),
        mean: [...mean],
        std: [...std],
      },
      testTimeFlip: false,
    };
  }
  const { images } = data;
  if (spec.kind === 'cnn-features-mlp') throw new Error('the MLP on features trains on features, not images');
  const { config } = spec;
  const augment = config.augmentShift > 0 || config.augmentFlip || config.augmentErase > 0;
  const augmentation = { maxShift: config.augmentShift, flip: config.augmentFlip, alternateFlip: config.alternateFlip, erase: config.augmentErase };
  const pixels = {
    train: augment ? augmentedPixelExamples(images.train, augmentation, streams.augment) : pixelExamples(images.train),
    validation: pixelExamples(images.validation),
    test: () => pixelExamples(images.test()),
    input: { type: 'pixels', scale: 1 / 255 } satisfies InputTransform,
    // A config.json written before the MLP had the option holds no testFlip: no flipping.
    testTimeFlip: config.testFlip === true,
  };
  if (spec.kind === 'mlp') return { architecture: mlpArchitecture(spec.config), ...pixels };
  const { architecture, featureLayer } = cnnArchitecture(spec.config);
  const whitening = spec.config.whiten ? whiteningFilters(images.train, 3) : undefined;
  return { architecture, featureLayer, ...pixels, ...(whitening ? { whitening } : {}) };
}

/** A job as it starts: its spec, the streams forked from its seed, its data and its recipe. */
export interface StartedJob {
  spec: JobSpec;
  streams: RunStreams;
  data: JobData;
  plan: Recipe;
}

/**
 * The start of every job: the streams forked from the configuration's seed, the data (given, or
 * made from the streams: a pixel model's split), the recipe. `fmnist train`, a search trial and
 * the web app's worker all start here.
 */
export function startJob(spec: JobSpec, data: JobData | ((streams: RunStreams) => JobData)): StartedJob {
  const streams = forkStreams(spec.config.seed);
  const jobData = typeof data === 'function' ? data(streams) : data;
  return { spec, streams, data: jobData, plan: recipe(spec, jobData, streams) };
}

/** config.json of a job: everything needed to repeat it (`version`: this package's; `software`: what ran it). */
export function jobConfigFile(spec: JobSpec, data: JobData, version: string, software: NonNullable<RunConfigFile['software']>): RunConfigFile {
  if (spec.kind === 'cnn-features-mlp') {
    return { model: spec.kind, config: spec.config, features: spec.features.dir, extractor: spec.features.extractorDir, version };
  }
  if (data.type !== 'images') throw new Error(`a ${spec.kind} job trains on images`);
  const { images } = data;
  return {
    model: spec.kind,
    config: spec.config,
    version,
    data: { dir: images.location.dir, origin: images.location.origin, files: images.checks.map(({ file, sha256, status }) => ({ file, sha256, status })) },
    software,
  };
}

/** What the job's model.json says beside its architecture and weights: its kind, input transform, classes, feature layer and test-time flipping. */
export function modelDetails(spec: JobSpec, plan: Recipe): ModelDetails & { kind: ModelKind } {
  return { kind: spec.kind, input: plan.input, classNames: CLASS_NAMES, featureLayer: plan.featureLayer, testTimeFlip: plan.testTimeFlip };
}

/** The job's model as its two files' contents (model.json's description, model.safetensors' bytes). */
export function jobModelFiles(job: Pick<StartedJob, 'spec' | 'plan'>, model: Sequential): Promise<{ description: ModelDescription; weights: Uint8Array }> {
  return encodeModel(model, modelDetails(job.spec, job.plan));
}

/** A finished job's results: the model's details, its test evaluation and the figures of metrics.json. */
export interface FinishedJob {
  details: ModelDetails & { kind: ModelKind };
  history: EpochRecord[];
  /** The test set's figures, evaluated as the model is used (with test-time flipping where it flips). */
  test: TestMetrics;
  /** [test images, 10]: each test image's probabilities (test_probabilities.npy). */
  probabilities: Float32Array;
  metrics: RunMetrics;
}

/**
 * The end of every job that trained all its epochs: the model (holding the best epoch's
 * weights) evaluated on the test set as it will be used (flipped where its recipe flips), and
 * the figures metrics.json keeps. The model is the caller's to dispose of.
 */
export async function finishJob(job: StartedJob, trained: { model: Sequential; fit: FitResult }, kernels: Kernels): Promise<FinishedJob> {
  const { spec, plan } = job;
  const { model, fit: result } = trained;
  const testExamples = plan.test();
  const testLoss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES);
  let evaluation;
  try {
    evaluation = await evaluate(kernels, model, testLoss, testExamples, undefined, testFlipShape(plan.testTimeFlip));
  } finally {
    testLoss.dispose();
  }
  const test = testMetrics(testExamples.labels, evaluation.predictions, evaluation.accuracy, evaluation.loss);
  const best = result.history[result.bestEpoch - 1];
  const metrics: RunMetrics = {
    kind: spec.kind,
    test,
    validation: { accuracy: best.valAccuracy, loss: best.valLoss },
    bestEpoch: result.bestEpoch,
    epochsRun: result.history.length,
    stoppedEarly: result.stoppedEarly,
    trainingSeconds: result.history.reduce((sum, record) => sum + record.seconds, 0),
    parameterCount: model.parameterCount,
    backend: kernels.description,
  };
  return { details: modelDetails(spec, plan), history: result.history, test, probabilities: evaluation.probabilities, metrics };
}

/**
 * A finished job's files as a run folder holds them, by name: the model (model.json,
 * model.safetensors), history.json, metrics.json and test_probabilities.npy. The web app keeps
 * and offers these; `fmnist train` writes the same through its RunFolder.
 */
export async function finishedJobFiles(finished: FinishedJob, model: Sequential): Promise<Map<string, Uint8Array>> {
  const { description, weights } = await encodeModel(model, finished.details);
  const text = (value: unknown) => new TextEncoder().encode(jsonFileText(value));
  return new Map([
    [RUN_FILES.model, text(description)],
    [RUN_FILES.weights, weights],
    [RUN_FILES.history, text(finished.history)],
    [RUN_FILES.metrics, text(finished.metrics)],
    [RUN_FILES.testProbabilities, testProbabilitiesFile(finished.probabilities, finished.probabilities.length / NUM_CLASSES)],
  ]);
}

export interface TrainJobOptions {
  kernels: Kernels;
  /** Saves after every epoch; a checkpoint found there is continued from. */
  checkpoint: Checkpointer;
  /** Return after this epoch with epochs left (a search trains a trial in stages); the schedule spans all epochs. */
  stopAfterEpoch?: number;
  onProgress?: (event: ProgressEvent) => void;
  log?: (message: string) => void;
  /** Stops the training between two batches (see fit). */
  signal?: AbortSignal;
  /** Changes made while training runs: the learning rate (see fit). */
  control?: TrainingControl;
  /** Hears of the model as soon as it is built and initialised (the web app watches its weights as it trains). */
  onModel?: (model: Sequential) => void;
}

/**
 * Each parameter tensor's learning rate as a multiple of the schedule's, where the job's
 * configuration sets any: the whitened first convolution frozen (0), batch normalisation's
 * shifts at `batchNormBiasLr`. Undefined where all are 1.
 */
export function learningRateScales(spec: JobSpec, model: Sequential): number[] | undefined {
  if (spec.kind !== 'cnn') return undefined;
  const { whiten, batchNormBiasLr } = spec.config;
  if (!whiten && (batchNormBiasLr ?? 1) === 1) return undefined;
  const frozen = whiten ? `layers.${convolutionLayers(model)[0]}.` : null;
  return model.parameters.map(({ name }) => {
    if (frozen && name.startsWith(frozen)) return 0;
    return name.endsWith('.beta') ? (batchNormBiasLr ?? 1) : 1;
  });
}

/**
 * Builds the model, initialises it from the job's `init` stream and trains it with the job's
 * optimiser and schedule, shuffling from `shuffle`, drawing dropout from `dropout` and
 * augmentation from `augment` (all three saved in every checkpoint). The model holds the
 * weights of the best validation accuracy at the end. Throws TrainingDiverged when the loss
 * stops being finite.
 */
export async function trainJob(spec: JobSpec, plan: Recipe, streams: RunStreams, options: TrainJobOptions): Promise<{ model: Sequential; fit: FitResult }> {
  const { kernels } = options;
  const { config } = spec;
  const model = new Sequential(kernels, plan.architecture);
  model.initialize(streams.init);
  if (spec.kind === 'cnn' && (plan.whitening || spec.config.diracInit)) {
    const values = await model.readValues();
    if (plan.whitening) setWhitening(model, values, plan.whitening);
    if (spec.config.diracInit) setDirac(model, values);
    model.writeValues(values);
  }
  options.log?.(`${spec.kind}: ${model.parameterCount} parameters; kernels: ${kernels.description}`);
  options.onModel?.(model);
  const loss = new SoftmaxCrossEntropy(kernels, NUM_CLASSES, config.labelSmoothing);
  const optimizer = createOptimizer(kernels, config, model.parameterCount);
  try {
    const result = await fit({
      kernels,
      model,
      loss,
      optimizer,
      train: plan.train,
      validation: plan.validation,
      epochs: config.epochs,
      batchSize: config.batchSize,
      learningRate: config.learningRate,
      schedule: { name: config.schedule, warmup: config.warmup },
      patience: config.patience,
      shuffleRng: streams.shuffle,
      dropoutRng: streams.dropout,
      otherRngs: [streams.augment],
      checkpoint: options.checkpoint,
      stopAfterEpoch: options.stopAfterEpoch,
      onProgress: options.onProgress,
      signal: options.signal,
      emaDecay: config.emaDecay,
      lookahead: config.lookahead,
      averageEpochs: config.averageEpochs,
      learningRateScales: learningRateScales(spec, model),
      validationFlip: testFlipShape(plan.testTimeFlip),
      control: options.control,
    });
    return { model, fit: result };
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    loss.dispose();
    optimizer.dispose();
  }
}
