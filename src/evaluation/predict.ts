import { identityOrder, type Examples } from '../data/dataset.ts';
import { IMAGE_SHAPE } from '../data/idx.ts';
import type { Kernels } from '../kernels/index.ts';
import { Workspace } from '../kernels/workspace.ts';
import type { SoftmaxCrossEntropy } from '../layers/softmax-cross-entropy.ts';
import type { Sequential } from '../models/sequential.ts';
import { Rng } from '../random/rng.ts';
import { appendMirrors, averageMirrors, imagesPerPass } from './mirror.ts';

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

/** evaluate's `flip` for a model that does or does not flip at test time: the images' shape, or null. */
export function testFlipShape(testTimeFlip: boolean | undefined): readonly number[] | null {
  return testTimeFlip ? IMAGE_SHAPE : null;
}

/**
 * Runs the model in evaluation mode over all examples, in order. Passes of 128 rows: larger
 * ones made the CNN's forward pass 2x slower on the native backend (buffers beyond the caches).
 * With `flip`, the shape of the examples as images ([height, width, channels]; test-time
 * flipping), each image's probabilities are the mean of its own and its mirror image's (64
 * images and their mirrors per pass, see mirror.ts), and the loss and predictions follow from
 * that mean.
 *
 * The probabilities, each example's loss and its predicted class are written where the kernels
 * run and read once at the end. The loss is the mean of the examples' losses (each computed
 * from the logits; with `flip`, -log of the mean probability of the label). The buffers come
 * from `workspace` where given (a classifier's, kept from call to call), else are released at the end.
 */
export async function evaluate(
  kernels: Kernels,
  model: Sequential,
  loss: SoftmaxCrossEntropy,
  examples: Examples,
  batchSize = 128,
  flip: readonly number[] | null = null,
  workspace?: Workspace,
): Promise<Evaluation> {
  const classes = model.outputSize;
  const count = examples.count;
  const order = identityOrder(count);
  const perPass = imagesPerPass(batchSize, flip);
  const rows = Math.min(perPass, count);
  const space = workspace ?? new Workspace(kernels);
  const input = space.take('input', (flip ? 2 : 1) * rows * examples.featureSize);
  const probabilities = space.take('probabilities', count * classes);
  const losses = space.take('losses', count);
  const predicted = space.take('predicted', count);
  const mirrorLosses = flip ? space.take('mirror losses', 2 * rows) : null;
  // Evaluation mode draws no random numbers; the generator only satisfies the interface.
  const context = { training: false, rng: Rng.fromSeed(0) };
  try {
    for (let start = 0; start < count; start += perPass) {
      const batch = Math.min(perPass, count - start);
      const n = batch * classes;
      examples.gather(input, order, start, batch, kernels);
      const labels = examples.labels.subarray(start, start + batch);
      const out = probabilities.subarray(start * classes, start * classes + n);
      if (!flip || !mirrorLosses) {
        const logits = model.forward(input, batch, context);
        loss.forward(logits, Int32Array.from(labels), batch, losses.subarray(start, start + batch));
        kernels.argmaxRows({ out: predicted.subarray(start, start + batch), inp: logits, rows: batch, cols: classes });
        kernels.copy({ out, inp: loss.probabilities, n });
        continue;
      }
      appendMirrors(kernels, input, batch, flip);
      const pairLabels = new Int32Array(2 * batch);
      pairLabels.set(labels);
      pairLabels.set(labels, batch);
      loss.forward(model.forward(input, 2 * batch, context), pairLabels, 2 * batch, mirrorLosses);
      averageMirrors(kernels, out, loss.probabilities, batch, classes);
    }
    const hostProbabilities = await kernels.read(probabilities);
    const predictions = new Uint8Array(count);
    let totalLoss = 0;
    let correct = 0;
    if (flip) {
      for (let i = 0; i < count; i++) {
        predictions[i] = argmax(hostProbabilities, i * classes, classes);
        totalLoss -= Math.log(Math.max(hostProbabilities[i * classes + examples.labels[i]], Number.MIN_VALUE));
      }
    } else {
      const [hostLosses, hostPredicted] = await Promise.all([kernels.read(losses), kernels.read(predicted)]);
      predictions.set(hostPredicted);
      for (let i = 0; i < count; i++) totalLoss += hostLosses[i];
    }
    for (let i = 0; i < count; i++) if (predictions[i] === examples.labels[i]) correct++;
    return { loss: totalLoss / count, accuracy: correct / count, predictions, probabilities: hostProbabilities };
  } finally {
    if (!workspace) space.dispose();
  }
}
