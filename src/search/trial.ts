import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { loadData, type DataOptions, type LoadedData } from '../data/prepare.ts';
import { TrainingDiverged, UserError } from '../errors.ts';
import type { Kernels } from '../kernels/index.ts';
import { forkStreams } from '../random/streams.ts';
import type { CnnConfig, MlpConfig } from '../runs/configs.ts';
import { makeFolder, writeFileAtomic } from '../io/atomic.ts';
import { MODEL_JSON, MODEL_WEIGHTS, type ModelDescription } from '../models/model-file.ts';
import { jobData, modelDetails, startJob, trainJob, type JobData, type JobSpec } from '../runs/job.ts';
import { RunFolder } from '../runs/run-folder.ts';
import type { Checkpointer, EpochRecord } from '../training/fit.ts';
import type { SearchModel } from './space.ts';

/** What a trial reached at one rung of successive halving. */
export interface RungResult {
  trial: number;
  rung: number;
  /** Epochs trained in all when the rung was reached. */
  epochs: number;
  /** Best validation accuracy over those epochs (null when the trial diverged). */
  valAccuracy: number | null;
  valLoss: number | null;
  bestEpoch: number | null;
  /** Seconds of training for this rung alone (a job resumed after a lost worker: since it resumed). */
  seconds: number;
  /** Every epoch so far (the trial's learning curve). */
  history: EpochRecord[];
  /** Why the trial ended badly, e.g. a diverging loss; null otherwise. */
  failure: string | null;
}

/** A trial's checkpoint file in its folder: one file (training/checkpoint.ts), which a search worker stores in its database. */
export const TRIAL_CHECKPOINT = 'checkpoint.safetensors';

/** One stage of one trial: train it (from its checkpoint, if any) up to `stopAfterEpoch`. */
export interface TrialJob {
  trial: number;
  rung: number;
  model: SearchModel;
  config: MlpConfig | CnnConfig;
  stopAfterEpoch: number;
  /** The trial's folder on the worker's machine: its checkpoint, and its model once it has trained all its epochs. */
  dir: string;
  /** features-mlp: a pipeline run's folder (features/ and cnn/). */
  pipelineDir?: string;
}

/** A file of a trial's model folder, as a search database stores it. */
export interface ModelFile {
  name: string;
  data: Uint8Array;
}

/**
 * The model a trial saved in `dir`, as files to store in the search database. A features
 * model names its extractor by absolute path here, since the folder it is later exported to
 * differs from the worker's.
 */
export function readModelFiles(dir: string): ModelFile[] {
  const description = JSON.parse(readFileSync(join(dir, MODEL_JSON), 'utf8')) as ModelDescription;
  if (description.input.type === 'cnn-features') description.input.extractor = resolve(dir, description.input.extractor);
  return [
    { name: MODEL_JSON, data: Buffer.from(`${JSON.stringify(description, null, 2)}\n`) },
    { name: MODEL_WEIGHTS, data: readFileSync(join(dir, MODEL_WEIGHTS)) },
  ];
}

/** Writes stored model files into `dir` (a features model's extractor relative to it again), unless a model is there already. */
export function writeModelFiles(files: ModelFile[], dir: string): void {
  if (existsSync(join(dir, MODEL_JSON))) return;
  makeFolder(dir);
  // The weights first: model.json's presence marks a complete model folder.
  for (const file of [...files].sort((a, b) => Number(a.name === MODEL_JSON) - Number(b.name === MODEL_JSON))) {
    if (file.name !== MODEL_JSON) {
      writeFileAtomic(join(dir, file.name), file.data);
      continue;
    }
    const description = JSON.parse(Buffer.from(file.data).toString('utf8')) as ModelDescription;
    if (description.input.type === 'cnn-features') description.input.extractor = relative(dir, description.input.extractor) || '.';
    writeFileAtomic(join(dir, MODEL_JSON), `${JSON.stringify(description, null, 2)}\n`);
  }
}

/** The training job a trial is: the same one `fmnist train` runs for its configuration. */
export function trialSpec(job: TrialJob): JobSpec {
  if (job.model === 'cnn') return { kind: 'cnn', config: job.config as CnnConfig };
  if (job.model === 'mlp') return { kind: 'mlp', config: job.config as MlpConfig };
  if (!job.pipelineDir) throw new Error('a features-mlp trial needs the pipeline folder of its features');
  const cnn = new RunFolder(join(job.pipelineDir, 'cnn'));
  const { featureLayer } = cnn.modelDescription();
  if (featureLayer === undefined) throw new UserError(`${cnn.dir}/model.json names no feature layer; pass the folder of a finished fmnist pipeline run.`);
  return { kind: 'cnn-features-mlp', config: job.config as MlpConfig, features: { dir: join(job.pipelineDir, 'features'), extractorDir: cnn.dir, featureLayer } };
}

/**
 * Runs trial jobs in one process, keeping the data it loaded for the next job. Only the
 * training file (or the training and validation features) is ever read: a search must choose
 * on validation alone, and never sees the test images.
 */
export class TrialRunner {
  private loaded: Promise<LoadedData> | undefined;
  private readonly cache = new Map<string, JobData>();

  constructor(
    private readonly kernels: Kernels,
    private readonly dataOptions: DataOptions,
  ) {}

  /** The job's data: split afresh for each seed, validation fraction, limit and features folder. */
  private async data(spec: JobSpec): Promise<JobData> {
    const { config } = spec;
    const key = JSON.stringify([spec.kind, config.seed, config.validationFraction, config.trainLimit, spec.kind === 'cnn-features-mlp' ? spec.features.dir : null]);
    let data = this.cache.get(key);
    if (!data) {
      const loaded = spec.kind === 'cnn-features-mlp' ? undefined : await (this.loaded ??= loadData(this.dataOptions));
      data = jobData(spec, forkStreams(config.seed), { loaded, allowModifiedData: this.dataOptions.allowModifiedData });
      this.cache.set(key, data);
    }
    return data;
  }

  /**
   * Trains the job from the checkpoint `checkpoint` holds (from the start where none), saving
   * there after every epoch. `finished`: the trial trained all its epochs and its model is saved
   * in its folder.
   */
  async run(job: TrialJob, checkpoint: Checkpointer): Promise<{ result: RungResult; finished: boolean }> {
    const spec = trialSpec(job);
    const started = startJob(spec, await this.data(spec));
    const folder = new RunFolder(job.dir);
    const startedAt = performance.now();
    try {
      const { model, fit } = await trainJob(spec, started.plan, started.streams, { kernels: this.kernels, checkpoint, stopAfterEpoch: job.stopAfterEpoch });
      // A search never sees the test images: the end of its job is the model alone, as fmnist train saves it.
      if (!fit.paused) await folder.saveModel(model, modelDetails(spec, started.plan));
      model.dispose();
      const best = fit.history[fit.bestEpoch - 1];
      const result: RungResult = {
        trial: job.trial,
        rung: job.rung,
        epochs: fit.history.length,
        valAccuracy: fit.bestAccuracy,
        valLoss: best.valLoss,
        bestEpoch: fit.bestEpoch,
        seconds: (performance.now() - startedAt) / 1000,
        history: fit.history,
        failure: null,
      };
      return { result, finished: !fit.paused };
    } catch (error) {
      // A diverging trial is a result of the search (its learning rate is too high), not a crash.
      if (!(error instanceof TrainingDiverged)) throw error;
      const result: RungResult = {
        trial: job.trial,
        rung: job.rung,
        epochs: job.stopAfterEpoch,
        valAccuracy: null,
        valLoss: null,
        bestEpoch: null,
        seconds: (performance.now() - startedAt) / 1000,
        history: [],
        failure: error.message,
      };
      return { result, finished: false };
    }
  }
}
