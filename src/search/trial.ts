import { join } from 'node:path';
import { CLASS_NAMES } from '../data/manifest.ts';
import { loadData, type DataOptions, type LoadedData } from '../data/prepare.ts';
import { TrainingDiverged, UserError } from '../errors.ts';
import type { Kernels } from '../kernels/index.ts';
import { forkStreams } from '../random/streams.ts';
import type { CnnConfig, MlpConfig } from '../runs/configs.ts';
import { jobData, recipe, trainJob, type JobData, type JobSpec } from '../runs/job.ts';
import { RunFolder } from '../runs/run-folder.ts';
import type { RungResult } from './journal.ts';
import type { SearchModel } from './space.ts';

/** One stage of one trial: train it (from its checkpoint, if any) up to `stopAfterEpoch`. */
export interface TrialJob {
  trial: number;
  rung: number;
  model: SearchModel;
  config: MlpConfig | CnnConfig;
  stopAfterEpoch: number;
  /** The trial's folder: its checkpoint, and its model once it has trained all its epochs. */
  dir: string;
  /** features-mlp: a pipeline run's folder (features/ and cnn/). */
  pipelineDir?: string;
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

  async run(job: TrialJob): Promise<RungResult> {
    const spec = trialSpec(job);
    const data = await this.data(spec);
    const streams = forkStreams(spec.config.seed);
    const plan = recipe(spec, data, streams);
    const folder = new RunFolder(job.dir);
    const started = performance.now();
    try {
      const { model, fit } = await trainJob(spec, plan, streams, { kernels: this.kernels, checkpoint: folder.checkpointer(), stopAfterEpoch: job.stopAfterEpoch });
      if (!fit.paused) folder.saveModel(model, { kind: spec.kind, input: plan.input, classNames: CLASS_NAMES, featureLayer: plan.featureLayer, testTimeFlip: plan.testTimeFlip });
      const best = fit.history[fit.bestEpoch - 1];
      return {
        trial: job.trial,
        rung: job.rung,
        epochs: fit.history.length,
        valAccuracy: fit.bestAccuracy,
        valLoss: best.valLoss,
        bestEpoch: fit.bestEpoch,
        seconds: (performance.now() - started) / 1000,
        history: fit.history,
        failure: null,
      };
    } catch (error) {
      // A diverging trial is a result of the search (its learning rate is too high), not a crash.
      if (!(error instanceof TrainingDiverged)) throw error;
      return {
        trial: job.trial,
        rung: job.rung,
        epochs: job.stopAfterEpoch,
        valAccuracy: null,
        valLoss: null,
        bestEpoch: null,
        seconds: (performance.now() - started) / 1000,
        history: [],
        failure: error.message,
      };
    }
  }
}
