import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTrainingSet } from '../data/load.ts';
import { locateData } from '../data/locate.ts';
import { UserError } from '../errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { loadModel } from '../io/model-file.ts';
import { loadKernels } from '../kernels/index.ts';
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
import { forkStreams, prepareData, type DataOptions } from './data-prep.ts';
import { featuresComplete, saveFeatures, trainFeaturesMlp } from './features.ts';
import { trainCnn } from './train-cnn.ts';
import { trainMlp } from './train-mlp.ts';
import type { ModelKind } from './train-model.ts';

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

export interface PipelineRunOptions extends DataOptions {
  outDir: string;
  /** Continue the pipeline in outDir: finished steps are kept, an interrupted one resumes. */
  resume?: boolean;
  /** Called as each step starts. */
  onStep?: (index: number, total: number, title: string) => void;
  onProgress?: (event: ProgressEvent) => void;
  log?: (message: string) => void;
}

const STEPS = ['MLP on pixels', 'CNN', 'feature extraction', 'MLP on CNN features'] as const;

function readStep(dir: string): StepSummary {
  const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
  return {
    testAccuracy: metrics.test.accuracy,
    validationAccuracy: metrics.validation.accuracy,
    bestEpoch: metrics.bestEpoch,
    trainingSeconds: metrics.trainingSeconds,
    parameterCount: metrics.parameterCount,
    folder: dir,
  };
}

/** A step is finished when its metrics.json exists; it was started when its config.json does. */
function stepState(dir: string): 'done' | 'started' | 'new' {
  if (existsSync(join(dir, 'metrics.json'))) return 'done';
  return existsSync(join(dir, 'config.json')) ? 'started' : 'new';
}

/**
 * The main job: (1) the MLP on pixels; (2) the CNN; (3) its features for the training,
 * validation and test images, saved as .npy; (4) the MLP on those features; each evaluated on
 * the test set; then summary.json. Folders: mlp/, cnn/, features/, cnn-features-mlp/.
 */
export async function runPipeline(options: PipelineOptions, run: PipelineRunOptions): Promise<PipelineSummary> {
  const started = performance.now();
  const { outDir } = run;
  const configPath = join(outDir, 'pipeline.json');
  let config: PipelineConfig;
  if (run.resume) {
    if (!existsSync(configPath)) throw new UserError(`${outDir} holds no pipeline to resume (no pipeline.json); check the folder.`);
    config = JSON.parse(readFileSync(configPath, 'utf8')).config as PipelineConfig;
  } else {
    if (existsSync(configPath)) throw new UserError(`${outDir} already holds a pipeline run; pass --resume ${outDir} to continue it, or choose another --out.`);
    config = pipelineConfig(options);
    mkdirSync(outDir, { recursive: true });
    writeJsonAtomic(configPath, { config, version: VERSION });
  }

  const location = await locateData(run.data);
  run.log?.(`data: ${location.dir} (${location.origin})`);
  const loaded = { location, training: loadTrainingSet(location.dir, { allowModified: run.allowModifiedData }) };
  // One backend for every step: the models share its memory and threads.
  const kernels = await loadKernels(config.cnn.backend, { threads: config.cnn.threads ?? undefined, onFallback: run.log });
  const common = { ...run, loaded, kernels };
  const dirs = { mlp: join(outDir, 'mlp'), cnn: join(outDir, 'cnn'), features: join(outDir, 'features'), featuresMlp: join(outDir, 'cnn-features-mlp') };
  const step = async (index: number, dir: string, train: (resume: boolean) => Promise<unknown>): Promise<StepSummary> => {
    const state = stepState(dir);
    run.onStep?.(index + 1, STEPS.length, `${STEPS[index]}${state === 'done' ? ' (done before, kept)' : state === 'started' ? ' (resuming)' : ''}`);
    if (state !== 'done') await train(state === 'started');
    return readStep(dir);
  };

  const mlp = await step(0, dirs.mlp, (resume) => trainMlp(config.mlp, { ...common, outDir: dirs.mlp, resume }));
  const cnn = await step(1, dirs.cnn, (resume) => trainCnn(config.cnn, { ...common, outDir: dirs.cnn, resume }));

  run.onStep?.(3, STEPS.length, `${STEPS[2]}${featuresComplete(dirs.features) ? ' (done before, kept)' : ''}`);
  const { model: cnnModel, description } = loadModel(dirs.cnn, kernels);
  const featureLayer = description.featureLayer;
  if (featureLayer === undefined) throw new Error(`${dirs.cnn}/model.json does not name its feature layer`);
  const featuresStarted = performance.now();
  if (!featuresComplete(dirs.features)) {
    // The CNN's own split and sample: the features of exactly the images it trained and validated on.
    const data = await prepareData(config.cnn, forkStreams(config.cnn.seed), common);
    saveFeatures(kernels, cnnModel, featureLayer, { train: data.train, val: data.validation, test: data.test() }, dirs.features, run.log);
  }
  const featureSeconds = (performance.now() - featuresStarted) / 1000;

  const cnnFeaturesMlp = await step(3, dirs.featuresMlp, (resume) =>
    trainFeaturesMlp(config.featuresMlp, { ...common, outDir: dirs.featuresMlp, resume, featuresDir: dirs.features, extractorDir: dirs.cnn, featureLayer }),
  );

  const summary: PipelineSummary = {
    models: { mlp, cnn, cnnFeaturesMlp },
    featureSeconds,
    seconds: (performance.now() - started) / 1000,
    backend: kernels.description,
    quick: config.quick,
    seed: config.seed,
  };
  writeJsonAtomic(join(outDir, 'summary.json'), summary);
  return summary;
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
