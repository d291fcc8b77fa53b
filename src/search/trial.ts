import { join, relative } from 'node:path';
import { featureExamples, featureStatistics, pixelExamples, type Examples } from '../data/dataset.ts';
import { NUM_CLASSES } from '../data/idx.ts';
import { CLASS_NAMES } from '../data/manifest.ts';
import { UserError } from '../errors.ts';
import { fileCheckpointer } from '../io/checkpoint.ts';
import { readModelDescription, saveModel, type InputTransform } from '../io/model-file.ts';
import type { Kernels } from '../kernels/index.ts';
import { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import { cnnArchitecture } from '../models/cnn.ts';
import { Sequential, type Architecture } from '../models/sequential.ts';
import type { CnnConfig, MlpConfig } from '../runs/configs.ts';
import { forkStreams, prepareData, type DataOptions } from '../runs/data-prep.ts';
import { readFeaturePart } from '../runs/features.ts';
import { mlpArchitecture } from '../runs/train-mlp.ts';
import { makeOptimizer } from '../runs/train-model.ts';
import { fit } from '../training/fit.ts';
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

function cnnFeatureLayer(pipelineDir: string): number {
  const cnnDir = join(pipelineDir, 'cnn');
  const { featureLayer } = readModelDescription(cnnDir);
  if (featureLayer === undefined) throw new UserError(`${cnnDir}/model.json names no feature layer; pass the folder of a finished fmnist pipeline run.`);
  return featureLayer;
}

/** The training and validation examples of a search: never the test set. */
interface SearchData {
  train: Examples;
  validation: Examples;
  input: InputTransform;
}

/**
 * Runs trial jobs in one process, keeping the data it loaded for the next job. Only the
 * training file (or the training and validation features) is ever read: a search must choose
 * on validation alone, and never sees the test images.
 */
export class TrialRunner {
  private readonly cache = new Map<string, SearchData>();

  constructor(
    private readonly kernels: Kernels,
    private readonly dataOptions: DataOptions,
  ) {}

  private async data(job: TrialJob): Promise<SearchData> {
    const { config } = job;
    const key = JSON.stringify([job.model, config.seed, config.validationFraction, config.trainLimit, job.pipelineDir]);
    const cached = this.cache.get(key);
    if (cached) return cached;
    let data: SearchData;
    if (job.model === 'features-mlp') {
      if (!job.pipelineDir) throw new Error('a features-mlp trial needs the pipeline folder of its features');
      const featuresDir = join(job.pipelineDir, 'features');
      const train = readFeaturePart(featuresDir, 'train');
      const validation = readFeaturePart(featuresDir, 'val');
      const { mean, std } = featureStatistics(train.x, train.size);
      data = {
        train: featureExamples(train.x, train.size, train.y, mean, std),
        validation: featureExamples(validation.x, validation.size, validation.y, mean, std),
        // Absolute here; made relative to the trial's folder when its model is saved.
        input: { type: 'cnn-features', extractor: join(job.pipelineDir, 'cnn'), featureLayer: cnnFeatureLayer(job.pipelineDir), mean: [...mean], std: [...std] },
      };
    } else {
      const prepared = await prepareData(config, forkStreams(config.seed), this.dataOptions);
      data = { train: pixelExamples(prepared.train), validation: pixelExamples(prepared.validation), input: { type: 'pixels', scale: 1 / 255 } };
    }
    this.cache.set(key, data);
    return data;
  }

  async run(job: TrialJob): Promise<RungResult> {
    const { config } = job;
    const data = await this.data(job);
    let architecture: Architecture;
    let featureLayer: number | undefined;
    if (job.model === 'cnn') ({ architecture, featureLayer } = cnnArchitecture(config as CnnConfig));
    else architecture = mlpArchitecture(config as MlpConfig, data.train.featureSize);
    const model = new Sequential(this.kernels, architecture);
    const streams = forkStreams(config.seed);
    model.initialize(streams.init);
    const started = performance.now();
    try {
      const result = fit({
        kernels: this.kernels,
        model,
        loss: new SoftmaxCrossEntropy(this.kernels, NUM_CLASSES),
        optimizer: makeOptimizer(this.kernels, config, model.parameterCount),
        train: data.train,
        validation: data.validation,
        epochs: config.epochs,
        batchSize: config.batchSize,
        learningRate: config.learningRate,
        schedule: { name: config.schedule },
        patience: 0,
        shuffleRng: streams.shuffle,
        dropoutRng: streams.dropout,
        checkpoint: fileCheckpointer(join(job.dir, 'checkpoint')),
        stopAfterEpoch: job.stopAfterEpoch,
      });
      if (!result.paused) {
        const input: InputTransform = data.input.type === 'cnn-features' ? { ...data.input, extractor: relative(job.dir, data.input.extractor) } : data.input;
        saveModel(job.dir, model, { kind: job.model === 'features-mlp' ? 'cnn-features-mlp' : job.model, input, classNames: CLASS_NAMES, featureLayer });
      }
      const best = result.history[result.bestEpoch - 1];
      return {
        trial: job.trial,
        rung: job.rung,
        epochs: result.history.length,
        valAccuracy: result.bestAccuracy,
        valLoss: best.valLoss,
        bestEpoch: result.bestEpoch,
        seconds: (performance.now() - started) / 1000,
        history: result.history,
        failure: null,
      };
    } catch (error) {
      // A diverging trial is a result of the search (its learning rate is too high), not a crash.
      if (!(error instanceof UserError) || !/diverged/.test(error.message)) throw error;
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
