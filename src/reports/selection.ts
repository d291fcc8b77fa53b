/**
 * Which test images a report shows: the samples of each class, the most confident mistakes, the
 * images of one confusion-matrix cell. report.html and the web app choose them here, from the
 * labels and each image's probabilities [count, 10]; this file needs no Node API.
 */
import { NUM_CLASSES } from '../data/idx.ts';
import { argmax } from '../evaluation/predict.ts';

/** Sample images shown per class. */
export const SAMPLES_PER_CLASS = 4;
/** Mistakes shown, the most confident first. */
export const MISTAKES_SHOWN = 20;

/** The first `perClass` images of each class, laid out one class per column (row by row). */
export function sampleIndices(labels: Uint8Array, perClass = SAMPLES_PER_CLASS): number[] {
  const byClass: number[][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (let i = 0; i < labels.length && byClass.some((list) => list.length < perClass); i++) {
    if (byClass[labels[i]].length < perClass) byClass[labels[i]].push(i);
  }
  const indices: number[] = [];
  for (let row = 0; row < perClass; row++) for (const list of byClass) if (row < list.length) indices.push(list[row]);
  return indices;
}

/** Each image's predicted class and that class's probability. */
function predictions(probabilities: Float32Array, count: number): { predicted: Uint8Array; confidence: Float32Array } {
  const predicted = new Uint8Array(count);
  const confidence = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    predicted[i] = argmax(probabilities, i * NUM_CLASSES, NUM_CLASSES);
    confidence[i] = probabilities[i * NUM_CLASSES + predicted[i]];
  }
  return { predicted, confidence };
}

/** The `shown` wrong predictions made with the highest probability, ties in image order. */
export function confidentMistakes(probabilities: Float32Array, labels: Uint8Array, shown = MISTAKES_SHOWN): number[] {
  const { predicted, confidence } = predictions(probabilities, labels.length);
  return Array.from({ length: labels.length }, (_, i) => i)
    .filter((i) => predicted[i] !== labels[i])
    .sort((a, b) => confidence[b] - confidence[a] || a - b)
    .slice(0, shown);
}

/** The images of true class `truth` predicted as `predictedClass` (a confusion-matrix cell), the most confident first. */
export function cellIndices(probabilities: Float32Array, labels: Uint8Array, truth: number, predictedClass: number): number[] {
  const { predicted, confidence } = predictions(probabilities, labels.length);
  return Array.from({ length: labels.length }, (_, i) => i)
    .filter((i) => labels[i] === truth && predicted[i] === predictedClass)
    .sort((a, b) => confidence[b] - confidence[a] || a - b);
}
