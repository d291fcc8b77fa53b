import type { Architecture } from './sequential.ts';

/**
 * The reference CNN the benchmarks train (issue 3): five 3x3 convolutions with ReLU and three
 * 2x2 max-poolings, dropout, a 256-unit dense layer and the 10-class head. Input [28, 28, 1].
 * 28x28 -> 14x14 -> 7x7 -> 3x3, so the flattened features are 3·3·128 = 1152.
 */
export function referenceCnnArchitecture(): Architecture {
  return {
    inputShape: [28, 28, 1],
    layers: [
      { type: 'conv2d', filters: 32 },
      { type: 'relu' },
      { type: 'conv2d', filters: 32 },
      { type: 'relu' },
      { type: 'maxpool2d' },
      { type: 'conv2d', filters: 64 },
      { type: 'relu' },
      { type: 'conv2d', filters: 64 },
      { type: 'relu' },
      { type: 'maxpool2d' },
      { type: 'conv2d', filters: 128 },
      { type: 'relu' },
      { type: 'maxpool2d' },
      { type: 'dropout', rate: 0.25 },
      { type: 'flatten' },
      { type: 'dense', units: 256 },
      { type: 'relu' },
      { type: 'dropout', rate: 0.5 },
      { type: 'dense', units: 10 },
    ],
  };
}
