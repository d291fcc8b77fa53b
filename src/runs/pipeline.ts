import { loadData, prepareData, type DataOptions, type LoadedData } from '../data/prepare.ts';
import { UserError } from '../errors.ts';
import { lockFolder } from '../io/lock.ts';
import { loadKernels, type Kernels } from '../kernels/index.ts';
import { averagesMirrorFeatures, pipelineFeatures } from '../models/features.ts';
import { forkStreams } from '../random/streams.ts';
import type { ProgressEvent } from '../training/fit.ts';
import { VERSION } from '../version.ts';
import {
  DEFAULT_CNN_CONFIG,
  DEFAULT_FEATURES_MLP_CONFIG,
  DEFAULT_MLP_CONFIG,
  type CnnConfig,
  type MlpConfig,
  type TrainingConfig,
} from './configs.ts';
import type { FeatureSource } from './job.ts';
import { FEATURE_PARTS, FeaturesFolder, PipelineFolder, RunFolder, type ModelKind } from './run-folder.ts';
import { trainCnn, trainFeaturesMlp, trainMlp } from './train.ts';

/** Everything a pipeline run does, saved as pipeline.json so --resume repeats it exactly. */
export interface PipelineConfig {
  seed: number;
  quick: boolean;
  mlp: MlpConfig;
  cnn: CnnConfig;
  featuresMlp: MlpConfig;
}

export interface PipelineOptions {
  seed?: number;
  /** A first look in under 2 minutes: 10,000 (MLP) and 15,000 (CNN) training images, few epochs. */
  quick?: boolean;
  backend?: TrainingConfig['backend'];
  threads?: number | null;
  /** Changes to each model's configuration, applied last. */
  overrides?: { mlp?: Partial<MlpConfig>; cnn?: Partial<CnnConfig>; featuresMlp?: Partial<MlpConfig> };
}

/** The pipeline's configuration: the three models' defaults, with the seed and backend of all. */
export function pipelineConfig(options: PipelineOptions = {}): PipelineConfig {
  const shared: Partial<TrainingConfig> = {
    seed: options.seed ?? DEFAULT_MLP_CONFIG.seed,
    backend: options.backend ?? 'auto',
    threads: options.threads ?? null,
  };
  const quick = options.quick ?? false;
  const overrides = options.overrides ?? {};
  return {
    seed: shared.seed!,
    quick,
    mlp: { ...DEFAULT_MLP_CONFIG, ...shared, ...(quick ? { trainLimit: 10_000, epochs: 5 } : {}), ...overrides.mlp },
    cnn: { ...DEFAULT_CNN_CONFIG, ...shared, ...(quick ? { trainLimit: 15_000, epochs: 3 } : {}), ...overrides.cnn },
    featuresMlp: { ...DEFAULT_FEATURES_MLP_CONFIG, ...shared, ...(quick ? { epochs: 10 } : {}), ...overrides.featuresMlp },
  };
}

export interface StepSummary {
  testAccuracy: number;
  validationAccuracy: number;
  bestEpoch: number;
  trainingSeconds: number;
  parameterCount: number;
  folder: string;
}

export interface PipelineSummary {
  models: { mlp: StepSummary; cnn: StepSummary; cnnFeaturesMlp: StepSummary };
  /** Seconds spent computing and writing the features. */
  featureSeconds: number;
  /** Wall-clock seconds of this invocation (a resumed run counts only its own part). */
  seconds: number;
  backend: string;
  quick: boolean;
  seed: number;
}

export interface PipelineRunOptions extends Omit<DataOptions, 'loaded'> {
  outDir: string;
  /** Continue the pipeline in outDir: finished steps are kept, an interrupted one resumes. */
  resume?: boolean;
  /** Called as each step starts. */
  onStep?: (index: number, total: number, title: string) => void;
  onProgress?: (event: ProgressEvent) => void;
  log?: (message: string) => void;
  /** Stops the step under way between two batches when aborted; `--resume` continues from its last checkpoint. */
  signal?: AbortSignal;
}

const STEPS = ['MLP on pixels', 'CNN', 'feature extraction', 'MLP on CNN features'] as const;

function readStep(folder: RunFolder): StepSummary {
  const metrics = folder.readMetrics();
  return {
    testAccuracy: metrics.test.accuracy,
    validationAccuracy: metrics.validation.accuracy,
    bestEpoch: metrics.bestEpoch,
    trainingSeconds: metrics.trainingSeconds,
    parameterCount: metrics.parameterCount,
    folder: folder.dir,
  };
}

/**
 * Writes the CNN's features of the images it trained, validated and was tested on, read back
 * from its folder: its model, and its split (split.npy). A CNN folder written before split.npy
 * existed gets its split from its configuration's streams, as it was drawn. A CNN that uses
 * test-time flipping gives each image the mean of its own and its mirror image's features,
 * as it averages their probabilities (features.json says so).
 */
async function writeFeatures(cnn: RunFolder, features: FeaturesFolder, kernels: Kernels, loaded: LoadedData, options: FeatureOptions): Promise<number> {
  const { model, description } = cnn.loadModel(kernels);
  if (description.featureLayer === undefined) throw new UserError(`${cnn.dir}/model.json names no feature layer; pass the folder of a trained CNN.`);
  const config = cnn.readConfig<CnnConfig>().config;
  const indices = cnn.readSplit(loaded.training.data.count);
  const data = prepareData(loaded, config, indices ? { indices } : forkStreams(config.seed), { allowModifiedData: options.allowModifiedData });
  const parts = { train: data.train, val: data.validation, test: data.test() };
  features.describe({ flipAverage: averagesMirrorFeatures(description) });
  for (const part of FEATURE_PARTS) {
    const started = performance.now();
    const images = parts[part];
    const values = await pipelineFeatures(kernels, model, description, images);
    const size = values.length / images.count;
    features.write(part, { x: values, size, y: images.labels });
    options.log?.(`features: ${part} ${images.count}x${size} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  model.dispose();
  return description.featureLayer;
}

/** Where to find the data and which kernels compute the features. */
export interface FeatureOptions extends DataOptions {
  /** Kernels to use instead of loading the CNN's configured backend (a pipeline shares one). */
  kernels?: Kernels;
  /** Receives a line for each part (train, val, test) once its features are saved, with the time it took. */
  log?: (message: string) => void;
}

/**
 * The pipeline's third step on its own: a trained CNN's features (its feature layer's output)
 * of the images it trained, validated and was tested on, saved in `featuresDir` as NumPy files
 * (train/val/test _x.npy float32 [N, features], _y.npy uint8 [N]) with features.json. Returns
 * what `trainFeaturesMlp` takes to train the MLP on them.
 */
export async function saveFeatures(cnnDir: string, featuresDir: string, options: FeatureOptions = {}): Promise<FeatureSource> {
  const cnn = new RunFolder(cnnDir);
  if (cnn.state() !== 'done') throw new UserError(`${cnnDir} holds no trained model (no metrics.json); train the CNN there first.`);
  const loaded = await loadData(options);
  const config = cnn.readConfig<CnnConfig>().config;
  const kernels = options.kernels ?? (await loadKernels(config.backend, { threads: config.threads ?? undefined, onFallback: options.log }));
  const featureLayer = await writeFeatures(cnn, new FeaturesFolder(featuresDir), kernels, loaded, options);
  return { dir: featuresDir, extractorDir: cnnDir, featureLayer };
}

/**
 * Writes summary.json in a folder laid out as a pipeline's (mlp/, cnn/, features/,
 * cnn-features-mlp/, each model's run finished), from the three runs' metrics and the details
 * given, and returns it. `buildReport` then draws the three models side by side.
 */
export function writePipelineSummary(dir: string, details: Omit<PipelineSummary, 'models'>): PipelineSummary {
  const pipeline = new PipelineFolder(dir);
  const summary: PipelineSummary = {
    models: { mlp: readStep(pipeline.mlp), cnn: readStep(pipeline.cnn), cnnFeaturesMlp: readStep(pipeline.featuresMlp) },
    ...details,
  };
  pipeline.writeSummary(summary);
  return summary;
}

/**
 * The main job: (1) the MLP on pixels; (2) the CNN; (3) its features for the training,
 * validation and test images, saved as .npy; (4) the MLP on those features; each evaluated on
 * the test set; then summary.json. Folders: mlp/, cnn/, features/, cnn-features-mlp/.
 */
export async function runPipeline(options: PipelineOptions, run: PipelineRunOptions): Promise<PipelineSummary> {
  const lock = lockFolder(run.outDir, 'fmnist pipeline', run.log);
  try {
    return await pipelineInFolder(options, run);
  } finally {
    lock.release();
  }
}

async function pipelineInFolder(options: PipelineOptions, run: PipelineRunOptions): Promise<PipelineSummary> {
  const started = performance.now();
  const { outDir } = run;
  const pipeline = new PipelineFolder(outDir);
  let config: PipelineConfig;
  if (run.resume) {
    if (!pipeline.hasConfig()) throw new UserError(`${outDir} holds no pipeline to resume (no pipeline.json); check the folder.`);
    config = pipeline.readConfig<PipelineConfig>();
  } else {
    if (pipeline.hasConfig()) throw new UserError(`${outDir} already holds a pipeline run; pass --resume ${outDir} to continue it, or choose another --out.`);
    config = pipelineConfig(options);
    pipeline.writeConfig({ config, version: VERSION });
  }

  const loaded = await loadData(run);
  // One backend for every step: the models share its memory and threads.
  const kernels = await loadKernels(config.cnn.backend, { threads: config.cnn.threads ?? undefined, onFallback: run.log });
  const common = { ...run, loaded, kernels };
  const step = async (index: number, folder: RunFolder, train: (resume: boolean) => Promise<unknown>): Promise<void> => {
    const state = folder.state();
    run.onStep?.(index + 1, STEPS.length, `${STEPS[index]}${state === 'done' ? ' (done before, kept)' : state === 'started' ? ' (resuming)' : ''}`);
    if (state !== 'done') await train(state === 'started');
  };

  await step(0, pipeline.mlp, (resume) => trainMlp(config.mlp, { ...common, outDir: pipeline.mlp.dir, resume }));
  await step(1, pipeline.cnn, (resume) => trainCnn(config.cnn, { ...common, outDir: pipeline.cnn.dir, resume }));

  run.onStep?.(3, STEPS.length, `${STEPS[2]}${pipeline.features.complete() ? ' (done before, kept)' : ''}`);
  const featuresStarted = performance.now();
  if (!pipeline.features.complete()) await writeFeatures(pipeline.cnn, pipeline.features, kernels, loaded, run);
  const featureSeconds = (performance.now() - featuresStarted) / 1000;

  const featureLayer = pipeline.cnn.modelDescription().featureLayer!;
  const features = { dir: pipeline.features.dir, extractorDir: pipeline.cnn.dir, featureLayer };
  await step(3, pipeline.featuresMlp, (resume) =>
    trainFeaturesMlp(config.featuresMlp, { ...common, outDir: pipeline.featuresMlp.dir, resume, features }),
  );

  return writePipelineSummary(outDir, { featureSeconds, seconds: (performance.now() - started) / 1000, backend: kernels.description, quick: config.quick, seed: config.seed });
}

/** The summary as a table, one row per model. */
export function formatSummary(summary: PipelineSummary): string {
  const rows: [string, ModelKind, StepSummary][] = [
    ['MLP on pixels', 'mlp', summary.models.mlp],
    ['CNN', 'cnn', summary.models.cnn],
    ['MLP on CNN features', 'cnn-features-mlp', summary.models.cnnFeaturesMlp],
  ];
  const lines = [`${'model'.padEnd(22)}${'test acc'.padStart(10)}${'val acc'.padStart(10)}${'train s'.padStart(10)}${'params'.padStart(10)}  folder`];
  for (const [title, , s] of rows) {
    lines.push(
      `${title.padEnd(22)}${`${(s.testAccuracy * 100).toFixed(2)}%`.padStart(10)}${`${(s.validationAccuracy * 100).toFixed(2)}%`.padStart(10)}` +
        `${s.trainingSeconds.toFixed(1).padStart(10)}${String(s.parameterCount).padStart(10)}  ${s.folder}`,
    );
  }
  lines.push(`features extracted in ${summary.featureSeconds.toFixed(1)} s; this run took ${summary.seconds.toFixed(1)} s on ${summary.backend}`);
  return lines.join('\n');
}
