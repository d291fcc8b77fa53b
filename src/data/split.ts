import type { Rng } from '../random/rng.ts';
import { PIXELS, NUM_CLASSES } from './idx.ts';
import type { LabelledImages } from './load.ts';

export interface TrainValidationSplit {
  train: LabelledImages;
  validation: LabelledImages;
}

/**
 * Splits labelled images into training and validation parts, stratified by class: each
 * class gives the same fraction of its examples to validation (1,200 of each class's 6,000
 * for the default 0.2). The choice within a class is a seeded shuffle; the same generator
 * state gives the same split.
 */
export function stratifiedSplit(data: LabelledImages, validationFraction: number, rng: Rng): TrainValidationSplit {
  const [trainIndices, validationIndices] = stratifiedIndices(data.labels, validationFraction, rng);
  return { train: selectExamples(data, trainIndices), validation: selectExamples(data, validationIndices) };
}

/** A stratified random sample of about `count` examples (every class in its share), for quick runs. */
export function stratifiedSample(data: LabelledImages, count: number, rng: Rng): LabelledImages {
  if (count >= data.count) return data;
  return selectExamples(data, stratifiedIndices(data.labels, count / data.count, rng)[1]);
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
