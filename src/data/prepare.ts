import type { Rng } from '../random/rng.ts';
import { loadTestSet, loadTrainingSet, type FileCheck, type LabelledImages, type LoadedSplit } from './load.ts';
import { locateData, type DataLocation, type LocateOptions } from './locate.ts';
import { selectExamples, splitIndices, type SplitIndices } from './split.ts';

/** Where to find the data; a caller that has loaded it already passes it on. */
export interface DataOptions {
  data?: LocateOptions;
  /** Load data files that differ from the official release instead of refusing them. */
  allowModifiedData?: boolean;
  /** The data, located and the training set loaded, to reuse. */
  loaded?: LoadedData;
}

/** The located data folder with its training file loaded. */
export interface LoadedData {
  location: DataLocation;
  training: LoadedSplit;
}

/** How a run divides the training file. */
export interface SplitSettings {
  /** Share of the training file held out for validation (stratified). */
  validationFraction: number;
  /** Train on a stratified sample of this many images; null = all. */
  trainLimit: number | null;
}

/** A run's data: its training and validation images, and the test set on demand. */
export interface PreparedData {
  location: DataLocation;
  checks: FileCheck[];
  /** Indices into the training file of the images trained on and validated on. */
  indices: SplitIndices;
  /** Size of the training file the indices point into. */
  fileCount: number;
  train: LabelledImages;
  validation: LabelledImages;
  /** The official test set, loaded on first use: only evaluation touches it. */
  test: () => LabelledImages;
}

/** Locates the data and loads the training file, unless `options.loaded` has it already. */
export async function loadData(options: DataOptions & { log?: (message: string) => void }): Promise<LoadedData> {
  if (options.loaded) return options.loaded;
  const location = await locateData(options.data);
  options.log?.(`data: ${location.dir} (${location.origin})`);
  return { location, training: loadTrainingSet(location.dir, { allowModified: options.allowModifiedData }) };
}

/**
 * The run's split of the training file (from the `split` stream) and, for a quick run, its
 * sample of the training part (from `sample`), or the split given in `indices`.
 */
export function prepareData(
  loaded: LoadedData,
  settings: SplitSettings,
  source: { split: Rng; sample: Rng } | { indices: SplitIndices },
  options: { allowModifiedData?: boolean } = {},
): PreparedData {
  const training = loaded.training.data;
  const indices = 'indices' in source ? source.indices : splitIndices(training.labels, settings.validationFraction, settings.trainLimit, source.split, source.sample);
  let test: LabelledImages | null = null;
  return {
    location: loaded.location,
    checks: loaded.training.checks,
    indices,
    fileCount: training.count,
    train: selectExamples(training, indices.train),
    validation: selectExamples(training, indices.validation),
    test: () => (test ??= loadTestSet(loaded.location.dir, { allowModified: options.allowModifiedData }).data),
  };
}
