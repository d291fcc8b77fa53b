import { identityOrder, type Examples } from '../data/dataset.ts';
import { IMAGE_SHAPE } from '../data/idx.ts';
import type { Kernels } from '../kernels/index.ts';
import type { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import type { Sequential } from '../models/sequential.ts';
import { Rng } from '../random/rng.ts';

export interface Evaluation {
  /** Mean cross-entropy. */
  loss: number;
  /** Fraction of examples whose most probable class is the label. */
  accuracy: number;
  /** [count] predicted class per example. */
  predictions: Uint8Array;
  /** [count, classes] softmax probabilities. */
  probabilities: Float32Array;
}

/** Index of the largest of row[offset .. offset+length). */
export function argmax(row: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let c = 1; c < length; c++) if (row[offset + c] > row[offset + best]) best = c;
  return best;
}

/** Mirrors each image of a batch [batch, height, width, channels] left to right, in place. */
export function mirrorImages(images: Float32Array, batch: number, [height, width, channels]: readonly number[]): void {
  for (let row = 0; row < batch * height; row++) {
    const base = row * width * channels;
    for (let x = 0; x < width >> 1; x++) {
      const left = base + x * channels;
      const right = base + (width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) {
        const value = images[left + c];
        images[left + c] = images[right + c];
        images[right + c] = value;
      }
    }
  }
}

/** evaluate's `flip` for a model that does or does not flip at test time: the images' shape, or null. */
export function testFlipShape(testTimeFlip: boolean | undefined): readonly number[] | null {
  return testTimeFlip ? IMAGE_SHAPE : null;
}

/**
 * Runs the model in evaluation mode over all examples, in order. Batches of 128: larger ones
 * made the CNN's forward pass 2x slower on the native backend (buffers beyond the caches).
 * With `flip`, the shape of the examples as images ([height, width, channels]; test-time
 * flipping), each image's probabilities are the mean of its own and its mirror image's, and the
 * loss and predictions follow from that mean.
 */
export function evaluate(
  kernels: Kernels,
  model: Sequential,
  loss: SoftmaxCrossEntropy,
  examples: Examples,
  batchSize = 128,
  flip: readonly number[] | null = null,
): Evaluation {
  const classes = model.outputSize;
  const order = identityOrder(examples.count);
  const input = kernels.allocate(Math.min(batchSize, examples.count) * examples.featureSize);
  const predictions = new Uint8Array(examples.count);
  const probabilities = new Float32Array(examples.count * classes);
  // Evaluation mode draws no random numbers; the generator only satisfies the interface.
  const context = { training: false, rng: Rng.fromSeed(0) };
  let totalLoss = 0;
  let correct = 0;
  try {
    for (let start = 0; start < examples.count; start += batchSize) {
      const batch = Math.min(batchSize, examples.count - start);
      examples.gather(input, order, start, batch, kernels);
      const labels = examples.labels.subarray(start, start + batch);
      const logits = model.forward(input, batch, context);
      const batchLoss = loss.forward(logits, labels, batch);
      const batchProbabilities = probabilities.subarray(start * classes, (start + batch) * classes);
      batchProbabilities.set(loss.probabilities.subarray(0, batch * classes));
      if (!flip) {
        totalLoss += batchLoss * batch;
        for (let b = 0; b < batch; b++) {
          const predicted = argmax(logits, b * classes, classes);
          predictions[start + b] = predicted;
          if (predicted === labels[b]) correct++;
        }
        continue;
      }
      mirrorImages(input, batch, flip);
      loss.forward(model.forward(input, batch, context), labels, batch);
      for (let i = 0; i < batch * classes; i++) batchProbabilities[i] = 0.5 * (batchProbabilities[i] + loss.probabilities[i]);
      for (let b = 0; b < batch; b++) {
        const predicted = argmax(batchProbabilities, b * classes, classes);
        predictions[start + b] = predicted;
        if (predicted === labels[b]) correct++;
        totalLoss -= Math.log(Math.max(batchProbabilities[b * classes + labels[b]], Number.MIN_VALUE));
      }
    }
  } finally {
    kernels.release(input);
  }
  return { loss: totalLoss / examples.count, accuracy: correct / examples.count, predictions, probabilities };
}
