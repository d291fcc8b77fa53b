import type { Rng } from '../random/rng.ts';
import { PIXELS, NUM_CLASSES } from './idx.ts';
import type { DataLocation } from './locate.ts';
import type { FileCheck, LabelledImages, LoadedSplit, LoadOptions } from './verify.ts';

export interface TrainValidationSplit {
  train: LabelledImages;
  validation: LabelledImages;
}

/** Which examples of a set a run uses, by index into the set, each list ascending. */
export interface SplitIndices {
  train: number[];
  validation: number[];
}

/**
 * Splits labelled images into training and validation parts, stratified by class: each
 * class gives the same fraction of its examples to validation (1,200 of each class's 6,000
 * for the default 0.2). The choice within a class is a seeded shuffle; the same generator
 * state gives the same split.
 */
export function stratifiedSplit(data: LabelledImages, validationFraction: number, rng: Rng): TrainValidationSplit {
  const indices = splitIndices(data.labels, validationFraction, null, rng, rng);
  return { train: selectExamples(data, indices.train), validation: selectExamples(data, indices.validation) };
}

/**
 * The indices of a stratified split (see stratifiedSplit), the training part then cut to a
 * stratified sample of about `trainLimit` examples when it is not null. The split draws from
 * `splitRng`, the sample from `sampleRng`.
 */
export function splitIndices(labels: Uint8Array, validationFraction: number, trainLimit: number | null, splitRng: Rng, sampleRng: Rng): SplitIndices {
  const [train, validation] = stratifiedIndices(labels, validationFraction, splitRng);
  if (trainLimit === null || trainLimit >= train.length) return { train, validation };
  const trainLabels = Uint8Array.from(train, (index) => labels[index]);
  const sample = stratifiedIndices(trainLabels, trainLimit / train.length, sampleRng)[1];
  return { train: sample.map((i) => train[i]), validation };
}

/** A stratified random sample of about `count` examples (every class in its share), for quick runs. */
export function stratifiedSample(data: LabelledImages, count: number, rng: Rng): LabelledImages {
  if (count >= data.count) return data;
  return selectExamples(data, stratifiedIndices(data.labels, count / data.count, rng)[1]);
}

/** What each of `count` examples is to a run: 0 unused, 1 training, 2 validation (split.npy). */
export function splitRoles(count: number, indices: SplitIndices): Uint8Array {
  const roles = new Uint8Array(count);
  for (const i of indices.train) roles[i] = 1;
  for (const i of indices.validation) roles[i] = 2;
  return roles;
}

/** The split that splitRoles recorded. */
export function indicesFromRoles(roles: Uint8Array): SplitIndices {
  const indices: SplitIndices = { train: [], validation: [] };
  roles.forEach((role, i) => {
    if (role === 1) indices.train.push(i);
    else if (role === 2) indices.validation.push(i);
  });
  return indices;
}

/**
 * Indices of the examples split in two, stratified: each class gives `fraction` of its
 * examples (rounded) to the second part. Both parts are in ascending order.
 */
function stratifiedIndices(labels: Uint8Array, fraction: number, rng: Rng): [number[], number[]] {
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`the fraction to split off must lie strictly between 0 and 1, got ${fraction}`);
  }
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const rest: number[] = [];
  const chosen: number[] = [];
  for (const indices of byClass) {
    rng.shuffle(indices);
    const chosenCount = Math.round(indices.length * fraction);
    chosen.push(...indices.slice(0, chosenCount));
    rest.push(...indices.slice(chosenCount));
  }
  // Ascending order keeps each part in the file's order; training reshuffles every epoch.
  rest.sort((a, b) => a - b);
  chosen.sort((a, b) => a - b);
  return [rest, chosen];
}

/** Copies the chosen examples into new compact arrays. */
export function selectExamples(data: LabelledImages, indices: ArrayLike<number>): LabelledImages {
  const count = indices.length;
  const pixels = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const source = indices[i];
    pixels.set(data.pixels.subarray(source * PIXELS, (source + 1) * PIXELS), i * PIXELS);
    labels[i] = data.labels[source];
  }
  return { count, pixels, labels };
}

/** The located data with its training file loaded, and its test file on demand. */
export interface LoadedData {
  location: DataLocation;
  training: LoadedSplit;
  /** Reads the official test set (the Node loader from the data folder, the web app from what it was given). */
  loadTest: (options: LoadOptions) => LoadedSplit;
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
    test: () => (test ??= loaded.loadTest({ allowModified: options.allowModifiedData }).data),
  };
}
