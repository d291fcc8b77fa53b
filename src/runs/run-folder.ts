/**
 * The run folder: the one module that knows its file names and what each file holds. Training,
 * the pipeline, evaluation, the report and the CLI read and write a run through it.
 *
 * A training run's folder (fmnist train, each model of a pipeline, a finished search trial):
 *   config.json      what the run was started with (RunConfigFile), written before training
 *   checkpoint/      the state after the last finished epoch, while training; removed at the end
 *   history.json     one EpochRecord per epoch
 *   model.json       the architecture and input transform; model.safetensors the weights
 *   metrics.json     the test and validation figures (RunMetrics); its presence marks a finished run
 *   test_probabilities.npy   float32 [10000, 10]: the model's softmax over the test images
 *   split.npy        uint8 [60000]: what each image of the training file was to the run
 *                    (0 unused, 1 training, 2 validation)
 * A pipeline's folder holds pipeline.json, summary.json, features/ and one training run per model.
 * The names, and the encodings the page shares, are declared in run-files.ts (no file access).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { FeaturePart } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import { indicesFromRoles, splitRoles, type SplitIndices } from '../data/split.ts';
import { UserError } from '../errors.ts';
import { makeFolder, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { loadNpy, saveNpy } from '../io/npy.ts';
import type { Kernels } from '../kernels/index.ts';
import { loadModel, readModelDescription, saveModel, type InputTransform, type ModelDescription } from '../models/model-file.ts';
import type { Sequential } from '../models/sequential.ts';
import { fileCheckpointer } from '../training/checkpoint.ts';
import type { Checkpointer, EpochRecord } from '../training/fit.ts';
import type { CnnConfig, MlpConfig } from './configs.ts';
import { jsonFileText, RUN_FILES, testProbabilitiesFile, type ModelKind, type RunConfigFile, type RunMetrics } from './run-files.ts';

export { MODEL_KINDS, RUN_FILES, type ModelKind, type RunConfigFile, type RunMetrics } from './run-files.ts';

const FILES = RUN_FILES;

type Check = (value: Record<string, unknown>) => boolean;

/** A JSON file of the folder, parsed and checked for the fields the code relies on. */
function readJson<T>(path: string, check: Check, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UserError(`Cannot read ${path} (${reason}); the run folder is damaged or incomplete.`);
  }
  if (typeof value !== 'object' || value === null || !check(value as Record<string, unknown>)) {
    throw new UserError(`${path} does not hold ${what}; the run folder is damaged.`);
  }
  return value as T;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** One training run's folder. */
export class RunFolder {
  constructor(readonly dir: string) {}

  private path(file: string): string {
    return join(this.dir, file);
  }

  /** `done` once metrics.json is written, `started` once config.json is, else `new`. */
  state(): 'done' | 'started' | 'new' {
    if (existsSync(this.path(FILES.metrics))) return 'done';
    return existsSync(this.path(FILES.config)) ? 'started' : 'new';
  }

  readConfig<C = MlpConfig | CnnConfig>(): RunConfigFile<C> {
    return readJson(this.path(FILES.config), (v) => typeof v.model === 'string' && isObject(v.config), 'a run configuration');
  }

  /** Writes config.json unless the run has one already (a resumed run keeps its own). */
  writeConfig(content: RunConfigFile): void {
    makeFolder(this.dir);
    if (!existsSync(this.path(FILES.config))) writeFileAtomic(this.path(FILES.config), jsonFileText(content));
  }

  readHistory(): EpochRecord[] {
    const history = readJson<EpochRecord[]>(this.path(FILES.history), (v) => Array.isArray(v), 'a list of epochs');
    return history;
  }

  writeHistory(history: EpochRecord[]): void {
    writeFileAtomic(this.path(FILES.history), jsonFileText(history));
  }

  readMetrics(): RunMetrics {
    if (!existsSync(this.path(FILES.metrics))) {
      throw new UserError(`${this.dir} holds no finished model (no ${FILES.metrics}); finish the run (--resume ${this.dir}) first.`);
    }
    return readJson(
      this.path(FILES.metrics),
      (v) => typeof v.kind === 'string' && isObject(v.test) && typeof v.test.accuracy === 'number' && isObject(v.validation) && typeof v.bestEpoch === 'number',
      'the figures of a finished run',
    );
  }

  /** The test accuracy recorded when the model was trained, or null where there is none. */
  recordedTestAccuracy(): number | null {
    return existsSync(this.path(FILES.metrics)) ? this.readMetrics().test.accuracy : null;
  }

  writeMetrics(metrics: RunMetrics): void {
    writeFileAtomic(this.path(FILES.metrics), jsonFileText(metrics));
  }

  /** Saves after every epoch into checkpoint/, and hands back what is there to continue from; `log` hears of a fallback to the older checkpoint. */
  checkpointer(log?: (message: string) => void): Checkpointer {
    return fileCheckpointer(this.path(FILES.checkpoint), log);
  }

  removeCheckpoint(): void {
    rmSync(this.path(FILES.checkpoint), { recursive: true, force: true });
  }

  /** model.json and model.safetensors; a cnn-features input's extractor is stored relative to this folder. */
  saveModel(model: Sequential, details: { kind: ModelKind; input: InputTransform; classNames: readonly string[]; featureLayer?: number; testTimeFlip?: boolean }): Promise<void> {
    const { input } = details;
    const stored = input.type === 'cnn-features' ? { ...input, extractor: relative(this.dir, input.extractor) || '.' } : input;
    return saveModel(this.dir, model, { ...details, input: stored });
  }

  loadModel(kernels: Kernels): { model: Sequential; description: ModelDescription } {
    return loadModel(this.dir, kernels);
  }

  modelDescription(): ModelDescription {
    return readModelDescription(this.dir);
  }

  writeTestProbabilities(probabilities: Float32Array, count: number): void {
    writeFileAtomic(this.path(FILES.testProbabilities), testProbabilitiesFile(probabilities, count));
  }

  /** The saved test probabilities [count, 10], or null when the folder has none. */
  readTestProbabilities(count: number): Float32Array | null {
    const path = this.path(FILES.testProbabilities);
    if (!existsSync(path)) return null;
    const array = loadNpy(path);
    if (array.dtype !== 'float32' || array.shape.length !== 2 || array.shape[1] !== NUM_CLASSES || array.shape[0] !== count) {
      throw new UserError(`${path} does not hold [${count}, ${NUM_CLASSES}] float32 probabilities; delete it to have them computed again.`);
    }
    return array.data;
  }

  writeSplit(indices: SplitIndices, fileCount: number): void {
    saveNpy(this.path(FILES.split), { dtype: 'uint8', shape: [fileCount], data: splitRoles(fileCount, indices) });
  }

  /** The images the run trained and validated on, or null for a folder written before split.npy existed. */
  readSplit(fileCount: number): SplitIndices | null {
    const path = this.path(FILES.split);
    if (!existsSync(path)) return null;
    const array = loadNpy(path);
    if (array.dtype !== 'uint8' || array.shape.length !== 1 || array.shape[0] !== fileCount) {
      throw new UserError(`${path} does not hold uint8 [${fileCount}] split roles; the run folder is damaged.`);
    }
    return indicesFromRoles(array.data);
  }
}

/**
 * The resume policy of a training run. A new run refuses a folder that already holds one; a
 * resumed run continues the run in its folder with the configuration that run was started with
 * (whatever was given now).
 */
export function openTrainingRun<C>(dir: string, given: C, resume: boolean): { folder: RunFolder; config: C } {
  const folder = new RunFolder(dir);
  const started = folder.state() !== 'new';
  if (started && !resume) throw new UserError(`${dir} already holds a run; pass --resume ${dir} to continue it, or choose another --out.`);
  if (!started && resume) throw new UserError(`${dir} holds no run to resume (no config.json); check the folder.`);
  return { folder, config: resume ? folder.readConfig<C>().config : given };
}

/** The features of a pipeline: <part>_x.npy float32 [N, F] and <part>_y.npy uint8 [N] per part. */
export const FEATURE_PARTS = ['train', 'val', 'test'] as const;
export type FeaturePartName = (typeof FEATURE_PARTS)[number];

/** features.json: how the features were computed. */
export interface FeaturesDescription {
  /** Each image's features are the mean of its own and its mirror image's (see extractFeatures). */
  flipAverage: boolean;
}

export class FeaturesFolder {
  constructor(readonly dir: string) {}

  /** Whether all six files are there. */
  complete(): boolean {
    return FEATURE_PARTS.every((part) => existsSync(join(this.dir, `${part}_x.npy`)) && existsSync(join(this.dir, `${part}_y.npy`)));
  }

  /**
   * Writes features.json. Written before the parts, so that whenever all six files are there, it
   * describes them; a folder without it (written before it existed) holds each image's own features.
   */
  describe(description: FeaturesDescription): void {
    makeFolder(this.dir);
    writeJsonAtomic(join(this.dir, 'features.json'), description);
  }

  description(): FeaturesDescription {
    const path = join(this.dir, 'features.json');
    if (!existsSync(path)) return { flipAverage: false };
    return readJson<FeaturesDescription>(path, (v) => typeof v.flipAverage === 'boolean', 'a features description');
  }

  write(part: FeaturePartName, features: FeaturePart): void {
    makeFolder(this.dir);
    saveNpy(join(this.dir, `${part}_x.npy`), { dtype: 'float32', shape: [features.y.length, features.size], data: features.x });
    saveNpy(join(this.dir, `${part}_y.npy`), { dtype: 'uint8', shape: [features.y.length], data: features.y });
  }

  /** One part's features and labels, checked. */
  read(part: FeaturePartName): FeaturePart {
    if (!this.complete()) {
      throw new UserError(`${this.dir} lacks some of the feature files (train/val/test _x.npy and _y.npy); extract the features first.`);
    }
    const x = loadNpy(join(this.dir, `${part}_x.npy`));
    const y = loadNpy(join(this.dir, `${part}_y.npy`));
    if (x.dtype !== 'float32' || x.shape.length !== 2 || y.dtype !== 'uint8' || y.shape[0] !== x.shape[0]) {
      throw new UserError(`${this.dir}: ${part}_x.npy must be float32 [N, F] and ${part}_y.npy uint8 [N]; the features folder is damaged.`);
    }
    return { x: x.data, size: x.shape[1], y: y.data };
  }

  /** A part's features alone, unchecked, or null where there are none (the report's PCA computes them then). */
  readX(part: FeaturePartName): Float32Array | null {
    const path = join(this.dir, `${part}_x.npy`);
    if (!existsSync(path)) return null;
    const array = loadNpy(path);
    return array.dtype === 'float32' ? array.data : null;
  }
}

/** pipeline.json: the configuration a pipeline was started with. */
export interface PipelineFile<C> {
  config: C;
  version: string;
}

/** A pipeline's folder: pipeline.json, summary.json, and a folder per step. */
export class PipelineFolder {
  readonly mlp: RunFolder;
  readonly cnn: RunFolder;
  readonly features: FeaturesFolder;
  readonly featuresMlp: RunFolder;

  constructor(readonly dir: string) {
    this.mlp = new RunFolder(join(dir, 'mlp'));
    this.cnn = new RunFolder(join(dir, 'cnn'));
    this.features = new FeaturesFolder(join(dir, 'features'));
    this.featuresMlp = new RunFolder(join(dir, 'cnn-features-mlp'));
  }

  static isPipeline(dir: string): boolean {
    return existsSync(join(dir, 'summary.json'));
  }

  hasConfig(): boolean {
    return existsSync(join(this.dir, 'pipeline.json'));
  }

  readConfig<C>(): C {
    return readJson<PipelineFile<C>>(join(this.dir, 'pipeline.json'), (v) => isObject(v.config), 'a pipeline configuration').config;
  }

  writeConfig<C>(content: PipelineFile<C>): void {
    makeFolder(this.dir);
    writeJsonAtomic(join(this.dir, 'pipeline.json'), content);
  }

  readSummary<S>(): S {
    return readJson<S>(join(this.dir, 'summary.json'), (v) => isObject(v.models), 'a pipeline summary');
  }

  writeSummary(summary: unknown): void {
    writeJsonAtomic(join(this.dir, 'summary.json'), summary);
  }
}
