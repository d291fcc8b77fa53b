import { cnnArchitecture } from './cnn.ts';
import type { Architecture } from './sequential.ts';

/**
 * The reference CNN the benchmarks train (issue 3): channels 32-32-64-64-128, 256 features,
 * dropout 0.25 and 0.5. 28x28 -> 14x14 -> 7x7 -> 3x3, so the flattened map is 3·3·128 = 1152.
 * `batchNorm` adds batch normalisation after each convolution and the feature layer.
 */
export function referenceCnnArchitecture({ batchNorm = false } = {}): Architecture {
  return cnnArchitecture({ channels: [32, 32, 64, 64, 128], features: 256, convDropout: 0.25, featureDropout: 0.5, batchNorm }).architecture;
}
