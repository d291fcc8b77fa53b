import { loadTestSet, loadTrainingSet, type FileCheck, type LabelledImages, type LoadedSplit } from '../data/load.ts';
import { locateData, type DataLocation, type LocateOptions } from '../data/locate.ts';
import { stratifiedSample, stratifiedSplit } from '../data/split.ts';
import { Rng } from '../random/rng.ts';
import type { TrainingConfig } from './configs.ts';

/** Where to find the data; a pipeline passes what it has loaded already. */
export interface DataOptions {
  data?: LocateOptions;
  /** Load data files that differ from the official release. */
  allowModifiedData?: boolean;
  /** The data, located and the training set loaded, to reuse. */
  loaded?: { location: DataLocation; training: LoadedSplit };
}

/**
 * The run's random streams, forked from the seed in a fixed order: the same seed gives the
 * same split, initialisation, shuffles, dropout masks, sample and augmentation.
 */
export function forkStreams(seed: number): { split: Rng; init: Rng; shuffle: Rng; dropout: Rng; sample: Rng; augment: Rng } {
  const root = Rng.fromSeed(seed);
  return { split: root.fork(), init: root.fork(), shuffle: root.fork(), dropout: root.fork(), sample: root.fork(), augment: root.fork() };
}

export interface PreparedData {
  location: DataLocation;
  checks: FileCheck[];
  train: LabelledImages;
  validation: LabelledImages;
  /** The official test set, loaded on first use: only evaluation touches it. */
  test: () => LabelledImages;
}

export async function prepareData(
  config: Pick<TrainingConfig, 'validationFraction' | 'trainLimit'>,
  streams: { split: Rng; sample: Rng },
  options: DataOptions & { log?: (message: string) => void },
): Promise<PreparedData> {
  const location = options.loaded?.location ?? (await locateData(options.data));
  const loadOptions = { allowModified: options.allowModifiedData };
  const training = options.loaded?.training ?? loadTrainingSet(location.dir, loadOptions);
  if (!options.loaded) options.log?.(`data: ${location.dir} (${location.origin})`);
  const split = stratifiedSplit(training.data, config.validationFraction, streams.split);
  const train = config.trainLimit === null ? split.train : stratifiedSample(split.train, config.trainLimit, streams.sample);
  let test: LabelledImages | null = null;
  return {
    location,
    checks: training.checks,
    train,
    validation: split.validation,
    test: () => (test ??= loadTestSet(location.dir, loadOptions).data),
  };
}

/** config.json of a training run: everything needed to repeat it. */
export function runConfigJson(model: string, config: unknown, data: PreparedData, extra: Record<string, unknown> = {}) {
  return {
    model,
    config,
    ...extra,
    data: { dir: data.location.dir, origin: data.location.origin, files: data.checks.map(({ file, sha256, status }) => ({ file, sha256, status })) },
    software: { node: process.version },
  };
}
