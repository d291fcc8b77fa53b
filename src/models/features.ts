import { identityOrder, type Examples } from '../data/dataset.ts';
import type { Kernels } from '../kernels/index.ts';
import { Rng } from '../random/rng.ts';
import type { Sequential } from './sequential.ts';

/** The output of layer `featureLayer` for every example, in evaluation mode: [count, features]. */
export function extractFeatures(kernels: Kernels, model: Sequential, featureLayer: number, examples: Examples, batchSize = 128): Float32Array {
  const size = model.layers[featureLayer].outputShape.reduce((a, b) => a * b, 1);
  const features = new Float32Array(examples.count * size);
  const input = kernels.allocate(batchSize * examples.featureSize);
  const order = identityOrder(examples.count);
  // Evaluation mode draws no random numbers; the generator only satisfies the interface.
  const context = { training: false, rng: Rng.fromSeed(0) };
  for (let start = 0; start < examples.count; start += batchSize) {
    const batch = Math.min(batchSize, examples.count - start);
    examples.gather(input, order, start, batch, kernels);
    const output = model.forwardTo(input, batch, context, featureLayer);
    features.set(output.subarray(0, batch * size), start * size);
  }
  return features;
}
